"""Short garbage-collector pauses for the long-running hot-path processes.

CPython's cyclic collector walks every tracked object of the oldest generation in one
go. In the execution process that generation holds every order, book and decided signal
of the day, and a full collection stopped the hot loop for 15-48 ms in the measurements
of ``bench/execution.py``, which is the whole latency budget. Objects that survive a
while are almost never garbage here, so they are *frozen* (``gc.freeze``: moved to a
generation the collector never walks) every few seconds, after a young collection has
removed the short-lived cycles. Reference counting still frees frozen objects; only a
cycle that becomes garbage after it was frozen is kept, and the process's peak resident
memory is logged every ten minutes so such a leak would show.

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

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0
REPORT_EVERY = 120  # freezes between two log lines (10 minutes at the default interval)


def freeze_survivors() -> None:
    """Collect the young generations, then freeze what is left (O(1): no walk of the frozen objects)."""
    gc.collect(1)
    gc.freeze()


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
            if count % REPORT_EVERY == 0:
                logger.info("gc: survivors frozen %d times; peak RSS %.0f MiB", count, peak_rss_mib())

    thread = threading.Thread(target=run, name="gc-freezer", daemon=True)
    thread.start()
    return thread
