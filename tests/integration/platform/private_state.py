"""What another local account can reach under a state dir: modes read by the owner, reads tried as ``nobody``."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

NOBODY = 65534  # the kernel's overflow id: `nobody` / `nogroup` on Debian
OPEN_BITS = stat.S_IRWXG | stat.S_IRWXO


def umask_of(pid: int) -> str:
    """The ``Umask`` field of ``/proc/<pid>/status`` (e.g. ``0077``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return line.split()[1]
    raise AssertionError(f"no Umask field for pid {pid}")


def open_entries(root: Path) -> list[str]:
    """Every file, folder or socket at or below ``root`` with a bit for the group or the others (links excepted)."""
    found = []
    for directory, folders, files in os.walk(root):
        here = [directory] if directory == str(root) else []
        for path in [*here, *(os.path.join(directory, name) for name in (*folders, *files))]:
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and mode & OPEN_BITS:
                found.append(f"{stat.filemode(mode)} {os.path.relpath(path, root)}")
    return found


def readable_by_nobody(paths: list[Path]) -> list[str]:
    """The ``paths`` (files and folders) the account ``nobody`` opens for reading; each tried by the kernel.

    One shell, switched to uid and gid 65534 with no supplementary group and no capability
    (``setpriv``), opens each path in turn: ``true < path``, a regular builtin, so a refused open
    does not end the shell as it would with ``:``, and no process per file.

    Raises:
        pytest.skip: when not root (only root can switch to another account).
    """
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or setpriv is None:
        pytest.skip("reading as another account needs root and util-linux's setpriv")
    script = 'while IFS= read -r path; do true 2>/dev/null < "$path" && printf "%s\\n" "$path"; done; exit 0'
    switched = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all"]
    result = subprocess.run(
        [*switched, "/bin/sh", "-c", script],
        input="".join(f"{path}\n" for path in paths),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def readable_entries(root: Path) -> list[Path]:
    """The regular files and folders at or below ``root`` (no link, socket or FIFO: opening a FIFO waits)."""
    entries = [root]
    for directory, folders, files in os.walk(root):
        for name in (*folders, *files):
            path = Path(directory) / name
            mode = path.lstat().st_mode
            if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
                entries.append(path)
    return entries
