"""The code's shape as a report: the largest files, classes and functions, and the kernel's size.

``make shape`` prints it. Sizes are a prompt to look, not a limit: a module that holds two
concerns is split along them; a module that is long because its one concern is long stays
whole. Nothing here fails a build.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "tickwave"
# Where the reader's eye should go first: the sizes past which a file, a class or a function
# usually holds more than one concern (shown in yellow, never enforced).
LOOK_AT_FILE_LINES = 500
LOOK_AT_CLASS_LINES = 250
LOOK_AT_FUNCTION_LINES = 60


@dataclass(frozen=True)
class Measure:
    """One measured unit of code: a file, a class or a function, with its line count."""

    kind: str
    name: str
    path: str
    line: int
    lines: int


def python_files(root: Path = ROOT) -> list[Path]:
    """Return every Python file git tracks under ``root``."""
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=root, capture_output=True, text=True, check=True)
    return [root / name for name in listed.stdout.split() if (root / name).is_file()]


def measure_source(source: str, path: str) -> list[Measure]:
    """Return the file, and every class and function in it, measured in lines."""
    measures = [Measure("file", path, path, 1, len(source.splitlines()))]
    for node in ast.walk(ast.parse(source, filename=path)):
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno:
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            measures.append(Measure(kind, node.name, path, node.lineno, node.end_lineno - node.lineno + 1))
    return measures


def measure_tree(root: Path = ROOT) -> list[Measure]:
    """Measure every tracked Python file under ``root``."""
    return [
        measure
        for path in python_files(root)
        for measure in measure_source(path.read_text(encoding="utf-8"), str(path.relative_to(root)))
    ]


def largest(measures: Iterable[Measure], kind: str, count: int) -> list[Measure]:
    """Return the ``count`` largest measures of one kind, largest first."""
    return sorted((m for m in measures if m.kind == kind), key=lambda m: (-m.lines, m.path, m.line))[:count]


def kernel_lines(measures: Iterable[Measure], kernel: str = KERNEL) -> int:
    """Return the lines of every file in the kernel package."""
    return sum(m.lines for m in measures if m.kind == "file" and Path(m.path).parts[0] == kernel)


def format_skips(root: Path = ROOT) -> int:
    """Count the lines the formatter is told to leave alone."""
    marker = "fmt: " + "skip"  # split so that this file does not count itself
    return sum(path.read_text(encoding="utf-8").count(marker) for path in python_files(root))


def table(title: str, rows: Sequence[Measure], look_at: int) -> Table:
    """Render one kind's largest measures, the ones past ``look_at`` in yellow."""
    out = Table(title=title, title_justify="left", caption=f"over {look_at} lines in yellow", caption_justify="left")
    out.add_column("lines", justify="right")
    out.add_column("where")
    for measure in rows:
        where = measure.path if measure.kind == "file" else f"{measure.path}:{measure.line} {measure.name}"
        style = "yellow" if measure.lines > look_at else None
        out.add_row(str(measure.lines), where, style=style)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=15, help="how many of each kind to list")
    arguments = parser.parse_args(argv)
    measures = measure_tree()
    console = Console()
    for kind, plural, look_at in (
        ("file", "files", LOOK_AT_FILE_LINES),
        ("class", "classes", LOOK_AT_CLASS_LINES),
        ("function", "functions", LOOK_AT_FUNCTION_LINES),
    ):
        console.print(table(f"largest {plural}", largest(measures, kind, arguments.top), look_at))
    files = [m for m in measures if m.kind == "file"]
    functions = sorted(m.lines for m in measures if m.kind == "function")
    console.print(
        f"{len(files)} files, {sum(m.lines for m in files)} lines; "
        f"kernel ({KERNEL}/): {kernel_lines(measures)} lines; "
        f"median function: {functions[len(functions) // 2] if functions else 0} lines; "
        f"lines kept from the formatter: {format_skips()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
