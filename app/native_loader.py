"""Import the compiled execution core only while it matches the source as it is now.

:mod:`app.native` compiles the execution core (the engine, the risk gate, the valuation,
the paper broker and the kernel modules they call) with mypyc into a directory of the
environment, writes a manifest of each module's source hash beside the binaries, copies
this file there as ``tickwave_native_loader.py`` and adds a ``.pth`` file that imports it
at every interpreter start. So every process of the environment (the live execution
process, a replay, the tests) imports the same compiled code.

The finder answers for the compiled modules only, and only if every one of their sources
still hashes as when they were built: the modules are compiled together and call each
other natively, so one changed source makes the whole build stale, and then every module
is imported from its source (one warning says so; ``make bootstrap`` builds again). The
live process never runs compiled code that differs from the source a reader sees.

The finder also stands aside for another checkout of the repository using the same
environment (a git worktree): the sources it would import are not the ones built.

``NATIVE_CORE_DIR`` (not ``TICKWAVE_*``: the settings refuse unknown ones) names another
build directory; set empty, the compiled core is not used (the source runs).

Standard library only: it runs before anything else is importable.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from collections.abc import Sequence
from importlib.machinery import ExtensionFileLoader, ModuleSpec, PathFinder
from importlib.util import spec_from_file_location
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
DIRECTORY_VARIABLE = "NATIVE_CORE_DIR"


def source_hash(path: Path) -> str:
    """Return the SHA-256 of a source file's bytes ("" when it cannot be read)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def stale_modules(modules: dict[str, dict[str, str]]) -> list[str]:
    """Return the modules of a manifest whose recorded source no longer hashes as when they were built."""
    return sorted(name for name, entry in modules.items() if source_hash(Path(entry["source"])) != entry["sha256"])


class NativeFinder:
    """A meta path finder for the modules in a build's manifest, while the build is fresh."""

    def __init__(self, directory: Path, manifest: dict[str, Any]) -> None:
        """Answer for the modules ``manifest`` lists, whose binaries are under ``directory``."""
        self.directory = directory
        self.modules: dict[str, dict[str, str]] = manifest["modules"]
        self._stale: list[str] | None = None
        self.is_foreign = False  # a module's source on the path is not the one built (see find_spec)

    def stale(self) -> list[str]:
        """Return the modules whose source changed since the build (worked out once, on the first import)."""
        if self._stale is None:
            self._stale = stale_modules(self.modules)
            if self._stale:
                warnings.warn(
                    f"the compiled execution core is stale ({', '.join(self._stale)} changed since it was built): "
                    "running the Python source; `make bootstrap` builds it again",
                    RuntimeWarning,
                    stacklevel=2,
                )
        return self._stale

    def find_spec(self, name: str, path: Sequence[str] | None = None, target: object = None) -> ModuleSpec | None:
        """Return the compiled module's spec, or None (the source is imported) when not listed, stale or foreign.

        Foreign: the source the path would import is not the one built (another checkout of the
        repository, e.g. a git worktree sharing this environment): its modules would call this
        build's binaries with interfaces of their own. From then on, the process runs its sources.
        """
        entry = self.modules.get(name)
        if entry is None or self.is_foreign or self.stale():
            return None
        source = PathFinder.find_spec(name, path)
        if source is None or source.origin is None or Path(source.origin).resolve() != Path(entry["source"]).resolve():
            self.is_foreign = True
            return None
        binary = str(self.directory / entry["binary"])
        return spec_from_file_location(name, binary, loader=ExtensionFileLoader(name, binary))


def install() -> NativeFinder | None:
    """Put the finder of this build (or of ``NATIVE_CORE_DIR``'s) first on the meta path; None if there is none."""
    chosen = os.environ.get(DIRECTORY_VARIABLE)
    if chosen == "":
        return None
    directory = Path(chosen) if chosen else Path(__file__).resolve().parent
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("python") != sys.version:
        return None  # built by another interpreter: its binaries would not load
    own = str(Path(__file__).resolve().parent)
    if str(directory) != own and own in sys.path:
        # The .pth file put this build on the path. Another build of the same modules has a shared
        # library of the same name, which its binaries import by name: found here first, it ran this
        # build's code under the other build's binaries.
        sys.path.remove(own)
    if str(directory) not in sys.path:
        sys.path.append(str(directory))  # the shared library the modules' binaries import by name
    finder = NativeFinder(directory, manifest)
    sys.meta_path.insert(0, finder)
    return finder


if __name__ == "tickwave_native_loader":
    install()
