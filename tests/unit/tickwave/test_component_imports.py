"""The layering rule, read from the source: the core and the dataflow import no component they must not."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (function-local imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def offending(folder: str, forbidden: tuple[str, ...], except_under: str | None = None) -> list[str]:
    found = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        if except_under and (ROOT / except_under) in path.parents:
            continue
        for name in sorted(imported_modules(path)):
            if any(name == prefix or name.startswith(prefix + ".") for prefix in forbidden):
                found.append(f"{path.relative_to(ROOT)} imports {name}")
    return found


def test_streams_when_imports_read_then_neither_models_nor_the_cli() -> None:
    assert offending("streams", ("models", "app.cli")) == []


def test_core_when_imports_read_then_no_component_outside_the_cli() -> None:
    components = ("streams", "models", "execution", "orchestration", "quality", "dashboards")
    assert offending("tickwave", components, except_under="app/cli") == []


@pytest.mark.parametrize("source", ["from models.registry import X\n", "def f():\n    import app.cli.common\n"])
def test_import_rule_when_a_forbidden_import_is_written_then_it_is_found(source: str, tmp_path: Path) -> None:
    path = tmp_path / "module.py"
    path.write_text(source)

    assert imported_modules(path) & {"models.registry", "app.cli.common"}
