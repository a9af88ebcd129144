"""The import walls in pyproject.toml hold, and a breach of one is caught by ``lint-imports``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """Run the contracts over the packages under ``tree`` (they shadow the installed checkout)."""
    environment = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [LINT_IMPORTS, "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def copied_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Python packages of the checkout, copied so that a test may break them."""
    tree = tmp_path_factory.mktemp("tree")
    for package in CONFIG["root_packages"]:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tree


def test_walls_when_the_checkout_is_linted_then_every_contract_is_kept(copied_tree: Path) -> None:
    done = lint_imports(copied_tree)

    assert done.returncode == 0, done.stdout[-3000:]
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("execution/wall_breach.py", "import streams.bars\n", "execution is an isolated process"),
        ("tickwave/wall_breach.py", "def f() -> None:\n    import models.base\n", "layers"),
        ("streams/wall_breach.py", "from app.cli import common\n", "no component imports the composition root"),
    ],
)
def test_walls_when_an_import_crosses_one_then_lint_imports_fails_naming_it(
    copied_tree: Path, module: str, source: str, broken: str
) -> None:
    breach = copied_tree / module
    breach.write_text(source)
    try:
        done = lint_imports(copied_tree)
    finally:
        breach.unlink()

    assert done.returncode != 0
    assert "BROKEN" in done.stdout
    assert broken in done.stdout.split("Broken contracts")[1]
