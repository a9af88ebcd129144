"""How much memory a process holds: the one rule `tickwave status`, the soak and Dagster's ceiling share."""

from __future__ import annotations

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
