"""The benchmark modules import one another without a cycle, counting imports inside functions."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"


def bench_imports(path: Path) -> set[str]:
    # Every `bench.<module>` a file imports, at module level or inside a function.
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("bench."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("bench."))
    return found


def test_bench_modules_when_imports_followed_then_no_cycle() -> None:
    graph = {path.stem: bench_imports(path) for path in BENCH.glob("*.py")}

    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as error:
        raise AssertionError(f"bench modules import in a cycle: {error.args[1]}") from error

    assert {"streams", "streams_latency", "streams_sinks"} <= set(order)
