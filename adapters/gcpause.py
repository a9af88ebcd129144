"""Short garbage-collector pauses for the long-running hot-path processes.

CPython's cyclic collector walks every tracked object of the oldest generation in one
go. In the execution process that generation holds every order, book and decided signal
of the day, and a full collection stopped the hot loop for 15-48 ms in the measurements
of ``bench/execution.py``, which is the whole latency budget. Objects that survive a
while are almost never garbage here, so they are *frozen* (``gc.freeze``: moved to a
generation the collector never walks) every few seconds, after a collection of what is
not frozen yet has removed the cycles that are already garbage.

Reference counting still frees frozen objects, but a cycle that becomes garbage after it
was frozen is only found by a walk of the frozen objects. The dataflow makes such cycles:
each poll of the model registry leaves a warehouse client's HTTP response whose parts
refer to each other (urllib3-future's response and its promise); the response held at a
freeze (in flight, or the connection's last) is frozen and becomes garbage at a later poll,
about one per freeze. With nothing walking them its memory grew ~5 MB an hour. So every ten
minutes the frozen objects are unfrozen, the whole heap is collected once and what is left
is frozen again: one full walk, logged with what it freed and the process's peak resident
memory. Measured under a live market at 500 ticks/s: the dataflow's freed 1,846 objects
in 41 ms (its memory then flat: +40 KB in 10 minutes), execution's none in 31-37 ms.

The frozen *count* is not asked for on the way: ``gc.get_freeze_count`` walks the whole
frozen list while holding the GIL, and with the dataflow's ~67,000 frozen objects that
walk stopped every other thread for 6-10 ms every 5 s (``bench/streams_latency.py``),
the size of the whole tick-to-signal budget.
"""

from __future__ import annotations

import gc
import logging
import resource
import sys
import threading
import time

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0
COLLECT_EVERY = 120  # freezes between two collections of the frozen objects (10 minutes at the default interval)


def freeze_survivors() -> int:
    """Collect what is not frozen yet, then freeze what is left (O(1): no walk of the frozen objects).

    A collection of every generation walks only the objects that are not frozen, those born
    since the last freeze, so it costs what a young one does; it also finds the cycles that
    died after they were promoted to the oldest generation, which a young collection leaves.
    Returns the unreachable objects the collection found.
    """
    unreachable = gc.collect()
    gc.freeze()
    return unreachable


def collect_frozen() -> tuple[int, float]:
    """Unfreeze, collect every generation, freeze what is left; return (unreachable objects, seconds)."""
    started = time.perf_counter()
    gc.unfreeze()
    unreachable = freeze_survivors()
    return unreachable, time.perf_counter() - started


def peak_rss_mib() -> float:
    """The process's peak resident memory in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def start_gc_freezer(stop: threading.Event, interval_s: float = DEFAULT_INTERVAL_S) -> threading.Thread:
    """Freeze survivors now and every ``interval_s`` until ``stop`` is set (a daemon thread)."""
    freeze_survivors()

    def run() -> None:
        count = 0
        while not stop.wait(interval_s):
            freeze_survivors()
            count += 1
            if count % COLLECT_EVERY == 0:
                unreachable, seconds = collect_frozen()
                logger.info(
                    "gc: survivors frozen %d times; a full collection freed %d unreachable objects in %.1f ms; "
                    "peak RSS %.0f MiB",
                    count,
                    unreachable,
                    seconds * 1000,
                    peak_rss_mib(),
                )

    thread = threading.Thread(target=run, name="gc-freezer", daemon=True)
    thread.start()
    return thread
