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

from tickwave.errors import ConfigurationError

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


def tighten(state_dir: Path) -> Tightened:
    """Create ``state_dir`` 0700, or take the group's and the others' bits off it and off everything below it.

    A state dir owned by another account is refused: whoever owns it may read and replace
    everything in it (one made in advance in a folder every account may write, such as
    ``/tmp``, would be theirs). So is a path through a symbolic link another account owns (a
    link planted there to a folder of the system's, which this walk would close to everyone
    else). Symbolic links below the state dir are neither followed nor changed (their mode
    means nothing on Linux). A file or folder owned by another account is not changed (only
    root could), but named. Entries removed during the walk (a merge's parts, a rolled log)
    are skipped.

    Args:
        state_dir: the state dir as configured (``~`` expanded, links not yet resolved).

    Raises:
        ConfigurationError: when the state dir, or a link on the way to it, belongs to another account.
    """
    started = time.monotonic()
    me = os.geteuid()
    _refuse_foreign_links(state_dir.absolute(), me)
    state_path = state_dir.resolve()
    state_path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    opened, walked, foreign = 0, 0, []
    owner = state_path.stat().st_uid
    if owner != me:
        raise ConfigurationError(
            f"the state dir {state_path} belongs to uid {owner}, not to this account (uid {me}): whoever owns it "
            f"can read and replace everything in it; choose another (TICKWAVE_STATE_DIR)"
        )
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


def _refuse_foreign_links(path: Path, me: int) -> None:
    """Raise ConfigurationError when the way to ``path`` passes a symbolic link owned by neither ``me`` nor root.

    Close to the kernel's rule for links in shared folders (``fs.protected_symlinks``), asked of every
    link on the way, those inside a link's target included; ``Path.resolve`` alone follows them all.
    """
    pending, here, hops = list(path.parts[1:]), Path(path.anchor), 0
    while pending:
        step = here / pending.pop(0)
        try:
            status = os.lstat(step)
        except FileNotFoundError:  # the rest is made by mkdir: no link there
            return
        if not stat.S_ISLNK(status.st_mode):
            here = step
            continue
        hops += 1
        if hops > 40:  # the kernel's limit on links in one path
            raise ConfigurationError(f"the state dir's path {path} passes more than 40 links (a loop?)")
        if status.st_uid not in (me, 0):
            raise ConfigurationError(
                f"the state dir's path {path} passes the link {step}, owned by uid {status.st_uid}: whoever owns it "
                f"chooses where the state dir is; choose a path without it (TICKWAVE_STATE_DIR)"
            )
        target = Path(os.readlink(step))
        pending = [*target.parts[1:], *pending] if target.is_absolute() else [*target.parts, *pending]
        here = Path(target.anchor) if target.is_absolute() else here
