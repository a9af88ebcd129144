"""The state dir is its owner's only: the umask every process runs with, and the walk that closes an old state dir.

Everything under the state dir is the platform's data or can reach it: the journal and the paper
ledger, the warehouse's parts (every order, fill and position, the access log), Kafka's segments
(signed signals and control commands) and its metadata log (every principal's SCRAM records),
Dagster's storage and logs, reports, models and the secrets. Each entry point (``tickwave``,
``python -m execution``, ``python -m warehouse_server``) calls :func:`keep_private` before it
writes a byte, and the supervisor starts every service with :data:`PRIVATE_UMASK`, so a file is
created ``0600`` and a folder ``0700`` by the process and by everything it starts (Kafka's JVM,
Dagster's webserver, daemon and runs, the engine's threads). ``tickwave up`` calls
:func:`tighten` first: a state dir made before (``0755``, files ``0644``) becomes its owner's.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

PRIVATE_UMASK: Final = 0o077  # no bit for the group or the others on anything created
OPEN_BITS: Final = stat.S_IRWXG | stat.S_IRWXO
PRIVATE_DIR_MODE: Final = 0o700


def keep_private() -> None:
    """Make every file and folder this process creates, and each process it starts, its owner's only."""
    os.umask(PRIVATE_UMASK)


@dataclass(frozen=True)
class Tightened:
    """What :func:`tighten` changed under a state dir."""

    opened: int  # files and folders another account could read, write or enter, now the owner's only
    walked: int  # everything looked at, the state dir included
    elapsed_s: float
    foreign: list[str] = field(default_factory=list)  # owned by another account: left as they were

    def line(self, state_path: Path) -> str | None:
        """The one line ``tickwave up`` prints about it, or None when nothing was open."""
        if not self.opened and not self.foreign:
            return None
        text = (
            f"state dir {state_path} was open to other accounts: {self.opened:,} of {self.walked:,} files and "
            f"folders made the owner's only (mode 0700/0600, {self.elapsed_s:.2f} s)"
        )
        if self.foreign:
            text += f"; {len(self.foreign)} owned by another account left as they are, e.g. {self.foreign[0]}"
        return text


def tighten(state_path: Path) -> Tightened:
    """Create ``state_path`` 0700, or take the group's and the others' bits off it and off everything below it.

    Symbolic links are neither followed nor changed (their mode means nothing on Linux), so a
    link in the state dir cannot make this walk change a file elsewhere. A file or folder owned
    by another account is not changed (only root could), but named. Entries removed during the
    walk (a merge's parts, a rolled log) are skipped.
    """
    started = time.monotonic()
    state_path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    opened, walked, foreign = 0, 0, []
    me = os.geteuid()
    for directory, folders, files in os.walk(state_path):
        here = [directory] if directory == str(state_path) else []
        for path in [*here, *(os.path.join(directory, name) for name in (*folders, *files))]:
            walked += 1
            try:
                status = os.lstat(path)
                if stat.S_ISLNK(status.st_mode) or not status.st_mode & OPEN_BITS:
                    continue
                if status.st_uid != me:
                    foreign.append(path)
                    continue
                os.chmod(path, stat.S_IMODE(status.st_mode) & ~OPEN_BITS, follow_symlinks=False)
                opened += 1
            except (FileNotFoundError, NotImplementedError):  # gone, or replaced by a link since its lstat
                continue
    return Tightened(opened, walked, time.monotonic() - started, foreign)
