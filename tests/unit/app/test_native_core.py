"""The compiled execution core: imported by every process while fresh, never when stale, deciding as the source.

``make bootstrap`` (``tickwave prepare``) builds it; these tests read that build. A test
here that fails with "not built" after a source change needs ``make bootstrap`` first.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import native, native_loader

pytestmark = pytest.mark.skipif(not native.MODULES, reason="mypyc compiles nothing: the execution core is the crate")

ROWS = 12_000  # ~7,900 orders: every path of the replay (denials, fills, reversals) many times
# The last one is not compiled.
_PROBED = ("execution.core.risk", "execution.core.positions", "tickwave.money", "execution.journal")
_FILES = f"import {', '.join(_PROBED)}\n" + "; ".join(f"print({name}.__file__)" for name in _PROBED)
_REPLAY = """
import hashlib, sys, tempfile
from pathlib import Path
import execution.core.risk
from bench.backtest import replay_settings, synthetic_holdout
from execution.backtest import replay_session
from models.engine_backtest import holdout_signals, holdout_ticks
from tickwave.contracts import encode
from tickwave.modeling import SignalRules
frame, probabilities = synthetic_holdout(int(sys.argv[1]))
with tempfile.TemporaryDirectory() as state:
    settings = replay_settings(Path(state))
    ticks, signals = holdout_ticks(frame, "1m"), holdout_signals(frame, probabilities, SignalRules(), "1m", "p", 1)
    result = replay_session(settings, ticks, signals, fast=True)
events = hashlib.sha256(b"".join(encode(event) for event in result.events)).hexdigest()
print(execution.core.risk.__file__)
print(len(result.orders), len(result.fills), result.total_pnl, result.positions, result.chain_head, events)
"""


def _run(
    code: str, *arguments: str, directory: str | None = None, cwd: Path = native.ROOT
) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop(native_loader.DIRECTORY_VARIABLE, None)
    if directory is not None:
        env[native_loader.DIRECTORY_VARIABLE] = directory
    return subprocess.run(
        [sys.executable, "-c", code, *arguments],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_native_core_when_prepared_then_a_new_process_imports_the_compiled_modules_only() -> None:
    assert native.is_fresh(), "the compiled execution core is not built from these sources: run make bootstrap"
    compiled = _run(_FILES).stdout.split()
    assert [Path(file).suffix for file in compiled] == [".so", ".so", ".so", ".py"]  # the file journal is not listed
    assert all(file.startswith(str(native.build_dir())) for file in compiled[:3])
    source = _run(_FILES, directory="").stdout.split()  # NATIVE_CORE_DIR empty: the source runs
    assert [Path(file).suffix for file in source] == [".py"] * 4


def test_native_core_when_one_source_changed_then_every_module_runs_from_source_and_a_warning_says_so(
    tmp_path: Path,
) -> None:
    # The modules call each other natively: one stale module makes the whole build stale.
    build = tmp_path / "build"
    shutil.copytree(native.build_dir(), build)
    manifest = json.loads((build / native_loader.MANIFEST).read_text())
    manifest["modules"]["execution.core.risk"]["sha256"] = "0" * 64  # as if risk.py changed after the build
    (build / native_loader.MANIFEST).write_text(json.dumps(manifest))
    stale = _run(_FILES, directory=str(build))
    assert [Path(file).suffix for file in stale.stdout.split()] == [".py"] * 4
    assert "the compiled execution core is stale (execution.core.risk changed" in stale.stderr
    assert not native.is_fresh(build)


def test_native_core_when_built_from_another_checkout_then_prepare_builds_again(tmp_path: Path) -> None:
    # The loader hashes the sources the manifest names: a build recorded for another checkout (moved, or made in
    # another worktree) would run from source at every start, so it is not fresh for `tickwave prepare`.
    build = tmp_path / "build"
    shutil.copytree(native.build_dir(), build)
    manifest = json.loads((build / native_loader.MANIFEST).read_text())
    manifest["modules"]["execution.core.risk"]["source"] = str(tmp_path / "elsewhere" / "execution" / "risk.py")
    (build / native_loader.MANIFEST).write_text(json.dumps(manifest))
    assert native.is_fresh(native.build_dir()) and not native.is_fresh(build)


def test_native_core_when_another_checkout_imports_then_it_runs_its_own_sources(tmp_path: Path) -> None:
    # A git worktree sharing this environment: its packages come first on its path, and this build's binaries
    # (the same module names) would run beside its other modules, with interfaces of their own.
    for package in ("adapters", "execution", "tickwave"):
        shutil.copytree(native.ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))

    files = _run(_FILES, cwd=tmp_path).stdout.split()

    assert files == [str(tmp_path / name.replace(".", "/")) + ".py" for name in _PROBED]


def test_native_core_when_a_holdout_replays_then_every_event_and_the_pnl_equal_the_source() -> None:
    compiled = _run(_REPLAY, str(ROWS)).stdout.splitlines()
    source = _run(_REPLAY, str(ROWS), directory="").stdout.splitlines()
    assert (Path(compiled[0]).suffix, Path(source[0]).suffix) == (".so", ".py")
    orders = int(compiled[1].split()[0])
    assert orders > ROWS // 4  # the holdout trades: not two empty journals compared
    assert compiled[1] == source[1]  # orders, fills, P&L, positions, chain head, a hash of every event


def test_native_core_when_another_build_is_named_then_its_own_shared_library_runs(tmp_path: Path) -> None:
    # The binaries of a build import its shared library by name, and another build of the same modules has
    # one of the same name: the environment's own build, on the path from its .pth file, must not answer.
    build = tmp_path / "build"
    shutil.copytree(native.build_dir(), build)
    code = (
        "import sys, execution.core.risk\n"
        + "print(*[m.__file__ for n, m in sys.modules.items() if n.endswith('__mypyc')])"
    )
    libraries = _run(code, directory=str(build)).stdout.split()
    assert libraries and all(library.startswith(str(build)) for library in libraries), libraries
