"""The shape the code keeps: short files, short classes, a small kernel."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_FILE_LINES = 500
MAX_CLASS_LINES = 250
# A ratchet: the kernel's size now. Lower it whenever a part leaves the kernel; never raise it without a design reason.
MAX_KERNEL_LINES = 4425


def python_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / name for name in listed.split() if (ROOT / name).is_file()]


def line_count(path: Path) -> int:
    return len(path.read_text().splitlines())


def long_classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path.name}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and node.end_lineno and node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]


def test_files_when_counted_then_none_is_over_the_limit() -> None:
    long = [
        f"{path.relative_to(ROOT)} ({lines})" for path in python_files() if (lines := line_count(path)) > MAX_FILE_LINES
    ]

    assert long == [], f"files over {MAX_FILE_LINES} lines: {long}"


def test_classes_when_measured_then_none_is_over_the_limit() -> None:
    long = [entry for path in python_files() for entry in long_classes(path)]

    assert long == [], f"classes over {MAX_CLASS_LINES} lines: {long}"


def test_kernel_when_counted_then_it_stays_small() -> None:
    kernel = sum(line_count(path) for path in python_files() if path.is_relative_to(ROOT / "tickwave"))

    assert kernel <= MAX_KERNEL_LINES, f"the kernel (tickwave/) has {kernel} lines"


@pytest.mark.parametrize(
    ("source", "expected"), [("class A:\n" + "    x = 1\n" * 300, 1), ("class A:\n    x = 1\n", 0)]
)
def test_long_classes_when_a_class_is_long_then_it_is_named(tmp_path: Path, source: str, expected: int) -> None:
    path = ROOT / "tests" / "unit" / "probe_shape.py"
    path.write_text(source)
    try:
        assert len(long_classes(path)) == expected
    finally:
        path.unlink()
