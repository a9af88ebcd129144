"""How much memory a process holds: the one rule `tickwave status`, the soak and Dagster's ceiling share."""

from __future__ import annotations

from pathlib import Path

import psutil


def resident_bytes(process: psutil.Process) -> int:
    """What ``process`` holds in memory: its proportional set size (PSS), RSS where that cannot be read.

    Not RSS: a page mapped n times counts n times in RSS and once in PSS over its mappings.
    The broker's ZGC maps its heap three times (JDK 17), so its RSS is up to three times the
    heap it really holds; and forked workers' shared pages are counted once over the tree.

    Raises:
        psutil.Error: when the process is gone.
    """
    try:
        return int(process.memory_full_info().pss)
    except psutil.AccessDenied:
        return int(process.memory_info().rss)


def allocated_bytes(pid: int) -> int | None:
    """What ``pid`` allocated itself: its proportional anonymous and shared-memory pages (Pss_Anon + Pss_Shmem).

    PSS without the file-backed pages (``Pss_File``): those are the kernel's cache of the
    binaries and files a process maps (a 555 MB shared library paged in as new code runs),
    dropped under memory pressure and read again from disk, not memory the process holds
    on to. A leak grows this figure; a library paged in does not. ``None`` when the kernel
    does not give it (no ``smaps_rollup``: before Linux 4.14, or another user's process) or
    the process is gone.
    """
    try:
        rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in rollup.splitlines()[1:] if ":" in line)
    try:
        return sum(int(fields[name].split()[0]) * 1024 for name in ("Pss_Anon", "Pss_Shmem"))
    except (KeyError, ValueError, IndexError):  # a kernel that does not split PSS (before 5.x)
        return None
