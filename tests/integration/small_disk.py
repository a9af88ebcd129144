"""A small filesystem of a test's own (a tmpfs with a size), to fill up on purpose.

Mounting needs root and a kernel that lets this process mount; where either is missing
the test is skipped with the reason (the machines that run ``make test`` here can). The
mount is undone when the test ends, whatever happened (lazily if something still holds it).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLER_NAME = "filler"


@contextmanager
def small_disk(path: Path, size_mb: int = 64) -> Iterator[Path]:
    """Mount a tmpfs of ``size_mb`` MiB at ``path`` for the block; skip the test if mounting is impossible."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a small tmpfs, and mounting one needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("mount/umount are not installed")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        if subprocess.run(["umount", str(path)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def fill(disk: Path) -> Path:
    """Fill the filesystem at ``disk`` to its last byte with one file; return it (delete it to free the space)."""
    filler = disk / FILLER_NAME
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):  # whole MiBs, then pages, then the last bytes
            chunk = bytes(size)
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    finally:
        os.close(fd)
    return filler


def free_bytes(disk: Path) -> int:
    """Return the free space of the filesystem at ``disk``."""
    return shutil.disk_usage(disk).free
