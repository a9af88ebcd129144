"""Build the execution core, the Rust crate ``execution/core/crate``, into the environment.

The crate is compiled with maturin (locked in ``uv.lock``) and cargo (the machine's Rust
toolchain), as the extension module ``tickwave_core``, which the facade :mod:`execution.core`
imports. ``tickwave prepare`` (run by ``make bootstrap``, so by ``make demo`` and ``make test``)
builds when the build is missing or stale: into ``<environment>/tickwave-core/`` with a manifest
of what it was built from (a digest of every source under the crate, the Python, rustc and
maturin versions), plus a ``.pth`` file that puts that folder on the import path of every process
of the environment. A build of the same sources is not done again; cargo keeps its compiled
dependencies in the crate's ``target/`` (ignored by git), so a rebuild after a change compiles the
crate alone. The folder, not an installed wheel: ``uv sync`` removes packages the lock does not
name, and leaves this folder and its ``.pth`` alone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parent.parent
CRATE: Final = ROOT / "execution" / "core" / "crate"
MODULE: Final = "tickwave_core"
MANIFEST: Final = "manifest.json"
PTH_NAME: Final = "tickwave_core.pth"
# What is not a source of the build: cargo's output, and prose.
_NOT_SOURCES: Final = ("target",)
_PROSE: Final = (".md",)
# What an environment made before the crate may hold: modules compiled to C, whose loader a .pth file ran first.
FORMER_BUILD: Final = "tickwave-native"
FORMER_PTH_NAME: Final = "tickwave_native.pth"
RUSTUP: Final = "https://rustup.rs (curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh), then a new shell"


def build_dir() -> Path:
    """Return where this environment's build of the core lives."""
    return Path(sys.prefix) / "tickwave-core"


def sources(crate: Path = CRATE) -> list[Path]:
    """Return the crate's source files, sorted: everything under it but ``target/`` and Markdown."""
    found = []
    for path in crate.rglob("*"):
        relative = path.relative_to(crate)
        if relative.parts[0] in _NOT_SOURCES or path.suffix in _PROSE or not path.is_file():
            continue
        found.append(path)
    return sorted(found)


def sources_digest(crate: Path = CRATE) -> str:
    """Return one SHA-256 over the crate's sources: each one's path under the crate and its bytes."""
    digest = hashlib.sha256()
    for path in sources(crate):
        name = path.relative_to(crate).as_posix().encode()
        content = path.read_bytes()
        digest.update(b"%d:%s%d:" % (len(name), name, len(content)))
        digest.update(content)
    return digest.hexdigest()


def toolchain() -> dict[str, str]:
    """Return the versions a build depends on besides its sources: Python, rustc and maturin."""
    rustc = subprocess.run(["rustc", "--version"], check=True, capture_output=True, text=True).stdout.strip()
    maturin = subprocess.run(
        [sys.executable, "-m", "maturin", "--version"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return {"python": sys.version, "rustc": rustc, "maturin": maturin}


def manifest_of(directory: Path | None = None) -> dict[str, object] | None:
    """Return the manifest of the build in ``directory`` (None: no readable build there)."""
    try:
        manifest = json.loads(((directory or build_dir()) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def is_fresh(directory: Path | None = None, crate: Path = CRATE) -> bool:
    """Return True when ``directory`` holds a build of ``crate``'s sources as they are now, by these tools."""
    directory = directory or build_dir()
    manifest = manifest_of(directory)
    if manifest is None or manifest.get("sources_sha256") != sources_digest(crate):
        return False
    binary = manifest.get("binary")
    if not isinstance(binary, str) or not (directory / binary).is_file() or not _pth_names(directory):
        return False
    return missing_tools() is not None or manifest.get("toolchain") == toolchain()


def _pth_names(directory: Path) -> bool:
    try:
        return (_pth_path().read_text().strip()) == str(directory)
    except OSError:
        return False


def _pth_path() -> Path:
    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME


def missing_tools() -> str | None:
    """Return what the build needs and the environment lacks, and how to get it (None: nothing)."""
    if shutil.which("cargo") is None or shutil.which("rustc") is None:
        return f"cargo and rustc, Rust's toolchain: {RUSTUP}"
    if importlib.util.find_spec("maturin") is None:
        return "maturin (the dev group of uv.lock: uv sync, or make bootstrap)"
    return None


def build(directory: Path | None = None) -> Path:
    """Build the crate (release, ``--locked``) into ``directory``, replacing what was there; return it.

    Raises:
        subprocess.CalledProcessError: cargo or maturin failed (their output is in the exception).
    """
    directory = directory or build_dir()
    digest, tools = sources_digest(), toolchain()
    with tempfile.TemporaryDirectory(prefix="tickwave-core-") as work:
        wheels = Path(work) / "wheels"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "maturin",
                "build",
                "--release",
                "--locked",
                "--manifest-path",
                str(CRATE / "Cargo.toml"),
                "--interpreter",
                sys.executable,
                "--out",
                str(wheels),
            ],
            cwd=CRATE,
            env={**os.environ, "PYO3_PYTHON": sys.executable},
            check=True,
            capture_output=True,
            text=True,
        )
        (wheel,) = wheels.glob(f"{MODULE}-*.whl")
        staged = Path(work) / "staged"
        with zipfile.ZipFile(wheel) as archive:  # the package only: the wheel's metadata names no installed package
            archive.extractall(staged, [name for name in archive.namelist() if name.startswith(f"{MODULE}/")])
        (binary,) = (staged / MODULE).glob(f"{MODULE}.*.so")
        manifest = {
            "sources_sha256": digest,
            "toolchain": tools,
            "binary": binary.relative_to(staged).as_posix(),
            "crate": str(CRATE),
        }
        (staged / MANIFEST).write_text(json.dumps(manifest, indent=1))
        shutil.rmtree(directory, ignore_errors=True)
        shutil.copytree(staged, directory)
    _pth_path().write_text(f"{directory}\n")  # a path line: the folder goes on sys.path at every start
    return directory


def remove_former_build(prefix: Path | None = None, purelib: Path | None = None) -> bool:
    """Remove a build of Python modules compiled to C from an environment made before the crate; True if one was there.

    Such an environment holds ``tickwave-native/`` (the binaries and their loader) and a ``.pth``
    file that imports that loader at every start, ahead of the sources: removed, every process
    imports the sources and the crate. ``prefix`` and ``purelib`` default to this environment's.
    """
    folder = (prefix or Path(sys.prefix)) / FORMER_BUILD
    pth = (purelib or Path(sysconfig.get_paths()["purelib"])) / FORMER_PTH_NAME
    found = folder.exists() or pth.exists()
    pth.unlink(missing_ok=True)  # first: without it, nothing imports the folder's loader
    shutil.rmtree(folder, ignore_errors=True)
    return found


def main() -> int:
    """Build when the build is missing or stale; 1 (and why, on stderr) when it cannot be built or fails.

    What ``make bootstrap`` runs before ``tickwave prepare``: the command line imports the
    execution core (through the journal and the audit chain), so the core must exist before it
    starts. Standard library only, as this module.
    """
    if remove_former_build():
        print("removed the environment's Python modules compiled to C: the sources run", file=sys.stderr)
    if is_fresh():
        return 0
    missing = missing_tools()
    if missing is not None:
        print(f"execution core not built: it needs {missing}", file=sys.stderr)
        return 1
    print("building the execution core (Rust, release; about a minute from nothing)", file=sys.stderr)
    try:
        build()
    except subprocess.CalledProcessError as exc:
        print(exc.stdout[-4000:] + exc.stderr[-4000:], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
