"""The models component's own import graph, read from the source: acyclic, and every import at module level."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parents[3] / "models"


def models_imports(source: str) -> tuple[set[str], set[str]]:
    """Return the ``models.*`` modules ``source`` imports at module level and those it imports inside a body.

    Imports under ``if TYPE_CHECKING:`` count as module level: they are edges of the graph too.
    """
    tree = ast.parse(source)
    top_level: set[str] = set()
    nested: set[str] = set()
    module_level = {id(node) for node in tree.body}
    module_level |= {id(child) for node in tree.body if isinstance(node, ast.If) for child in node.body}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        names = [name for name in names if name.startswith("models.")]
        (top_level if id(node) in module_level else nested).update(names)
    return top_level, nested


def graph() -> dict[str, set[str]]:
    """Return ``{module: the models modules it imports}`` over every module of ``models/``."""
    return {f"models.{path.stem}": models_imports(path.read_text())[0] for path in sorted(MODELS.glob("*.py"))}


def cycle_in(edges: dict[str, set[str]]) -> list[str]:
    """Return one import cycle (``[a, b, ..., a]``), or an empty list when the graph is acyclic."""
    state: dict[str, str] = {}
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = "open"
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = "done"
        path.pop()
        return []

    for module in sorted(edges):
        if module not in state and (found := visit(module)):
            return found
    return []


def test_models_when_imports_read_then_no_module_imports_another_inside_a_function() -> None:
    nested = {path.name: sorted(models_imports(path.read_text())[1]) for path in sorted(MODELS.glob("*.py"))}

    assert {name: found for name, found in nested.items() if found} == {}


def test_models_when_imports_read_then_they_form_no_cycle() -> None:
    assert cycle_in(graph()) == []


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ],
)
def test_cycle_in_when_edges_close_a_loop_then_it_is_returned(edges: dict[str, set[str]], expected: list[str]) -> None:
    assert cycle_in(edges) == expected


def test_models_imports_when_an_import_sits_in_a_function_then_it_is_nested() -> None:
    source = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from models.a import A\n"
    source += "def f():\n    from models.b import B\n"

    assert models_imports(source) == ({"models.a"}, {"models.b"})
