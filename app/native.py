"""Compile the execution core with mypyc, into the environment, for every process to import.

The engine replay (a backtest through the live engine, order for order) spends its time in
Python calls spread over the engine, the risk gate, the valuation and the paper broker; no
one function dominates. mypyc compiles those modules, as they are and type-checked as they
are, to C extensions: calls between them become C calls and their attributes struct
fields, while their decisions stay the source's (the parity tests replay the same holdout
through both). The live execution process imports the same binaries, so what a backtest
measured is what trades.

``tickwave prepare`` (run by ``make bootstrap``) builds when the build is missing or any
source changed: into ``<environment>/tickwave-native/`` with a manifest of source hashes,
plus a ``.pth`` file that installs :mod:`app.native_loader` at interpreter start. Without
a C compiler or mypyc (an environment without the dev group) nothing is built and the
source runs, slower. mypyc (part of mypy) and setuptools come from ``uv.lock``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from app import native_loader

ROOT = Path(__file__).resolve().parent.parent

# The modules compiled together: what a decision runs through, and the kernel modules they call per event.
# Empty, nothing is compiled and `tickwave prepare` removes an earlier build (see remove()).
MODULES: tuple[str, ...] = (
    "execution.backtest",
    "execution.core.broker",
    "execution.core.decisions",
    "execution.core.engine",
    "execution.core.engine_state",
    "execution.core.limits",
    "execution.core.memory_journal",
    "execution.core.paper",
    "execution.core.positions",
    "execution.core.reconcile",
    "execution.core.replay",
    "execution.core.risk",
    "execution.core.sizing",
    "execution.core.stops",
    "execution.core.valuation",
    "execution.journal_space",
    "execution.reconciler",
    "execution.service",
    "tickwave.audit_chain",
    "tickwave.clock",
    "tickwave.contracts.core",
    "tickwave.instruments",
    "tickwave.market",
    "tickwave.money",
)

PTH_NAME = "tickwave_native.pth"
LOADER_NAME = "tickwave_native_loader.py"

# Run by the build's own interpreter, in the repository (mypy's configuration there: strict, as the type checks).
_SETUP = """
import sys
from setuptools import setup
from mypyc.build import mypycify
target, paths = sys.argv[1], sys.argv[2:]
sys.argv = [sys.argv[0], "build_ext", "--build-lib", target + "/lib", "--build-temp", target + "/temp"]
setup(name="tickwave-native", packages=[], py_modules=[], ext_modules=mypycify(paths, opt_level="3",
      target_dir=target + "/c"))
"""


def build_dir() -> Path:
    """Return where this environment's build lives."""
    return Path(sys.prefix) / "tickwave-native"


def source_of(module: str) -> Path:
    """Return the source file of ``module`` in the repository."""
    return ROOT.joinpath(*module.split(".")).with_suffix(".py")


def is_fresh(directory: Path | None = None) -> bool:
    """Return True when ``directory`` holds a build of :data:`MODULES` from their sources as they are now."""
    directory = directory or build_dir()
    try:
        manifest = json.loads((directory / native_loader.MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    modules = manifest.get("modules", {})
    return (
        manifest.get("python") == sys.version
        and sorted(modules) == sorted(MODULES)
        and not native_loader.stale_modules(modules)  # the loader's own rule, on the sources the manifest names
        and all((directory / modules[name]["binary"]).exists() for name in MODULES)
        and _read(directory / LOADER_NAME) == Path(native_loader.__file__).read_bytes()
    )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def missing_tools() -> str | None:
    """Return what the build needs and the environment lacks (None: nothing)."""
    if shutil.which(os.environ.get("CC", "cc")) is None:
        return "a C compiler (Debian/Ubuntu: apt-get install gcc)"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "Python's C headers (Debian/Ubuntu: apt-get install python3-dev)"
    if importlib.util.find_spec("mypyc") is None or importlib.util.find_spec("setuptools") is None:
        return "mypyc and setuptools (the dev group of uv.lock: uv sync)"
    return None


def remove(directory: Path | None = None) -> bool:
    """Remove the build in ``directory`` and the ``.pth`` file that loads it; return True when there was one."""
    directory = directory or build_dir()
    pth = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    found = directory.exists() or pth.exists()
    pth.unlink(missing_ok=True)
    shutil.rmtree(directory, ignore_errors=True)
    return found


def build(directory: Path | None = None) -> Path:
    """Compile :data:`MODULES` into ``directory`` (replacing what was there) and install the loader; return it.

    Raises:
        subprocess.CalledProcessError: the compiler failed (its output is in the exception).
    """
    directory = directory or build_dir()
    hashes = {name: native_loader.source_hash(source_of(name)) for name in MODULES}
    with tempfile.TemporaryDirectory(prefix="tickwave-native-") as work:
        paths = [str(source_of(name).relative_to(ROOT)) for name in MODULES]
        # gcc 12's -Warray-bounds misreads CPython's Py_SIZE on mypyc's objects; mypyc builds with -Werror.
        env = {**os.environ, "CFLAGS": (os.environ.get("CFLAGS", "") + " -Wno-array-bounds").strip()}
        subprocess.run(
            [sys.executable, "-c", _SETUP, work, *paths], cwd=ROOT, env=env, check=True, capture_output=True, text=True
        )
        staged, final = Path(work) / "lib", Path(work) / "final"
        final.mkdir()
        for shared in staged.glob("*.so"):  # the one library the modules' binaries import by name
            shutil.copy2(shared, final / shared.name)
        binaries = {name: _binary_of(staged, name) for name in MODULES}
        for binary in binaries.values():  # under modules/: the build directory on sys.path holds no package
            (final / "modules" / binary).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(staged / binary, final / "modules" / binary)
        manifest = {
            "python": sys.version,
            "modules": {
                name: {"source": str(source_of(name)), "sha256": hashes[name], "binary": f"modules/{binaries[name]}"}
                for name in MODULES
            },
        }
        (final / native_loader.MANIFEST).write_text(json.dumps(manifest, indent=1))
        shutil.copyfile(native_loader.__file__, final / LOADER_NAME)
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(final, directory)
    pth = Path(sysconfig.get_paths()["purelib"]) / PTH_NAME
    # An import line of a .pth runs at every start: it imports the loader only while the build is there.
    loader = directory / LOADER_NAME
    pth.write_text(f"{directory}\nimport os; os.path.exists({str(loader)!r}) and __import__({loader.stem!r})\n")
    return directory


def _binary_of(staged: Path, module: str) -> str:
    """Return the path (relative to ``staged``) of ``module``'s extension, as setuptools named it."""
    *package, name = module.split(".")
    (found,) = staged.joinpath(*package).glob(f"{name}.*.so")
    return str(found.relative_to(staged))
