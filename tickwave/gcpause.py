"""Short garbage-collector pauses for the long-running hot-path processes.

CPython's cyclic collector walks every tracked object of the oldest generation in one
go. In the execution process that generation holds every order, book and decided signal
of the day, and a full collection stopped the hot loop for 15-48 ms in the measurements
of ``bench/execution.py``, which is the whole latency budget. Objects that survive a
while are almost never garbage here, so they are *frozen* (``gc.freeze``: moved to a
generation the collector never walks) every few seconds, after a young collection has
removed the short-lived cycles. Reference counting still frees frozen objects; only a
cycle that becomes garbage after it was frozen is kept, and the frozen count is logged so
such a leak would show.
"""

from __future__ import annotations

import gc
import logging
import threading

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 5.0
REPORT_EVERY = 120  # freezes between two log lines (10 minutes at the default interval)


def freeze_survivors() -> int:
    """Collect the young generations, freeze what is left; return the frozen object count."""
    gc.collect(1)
    gc.freeze()
    return gc.get_freeze_count()


def start_gc_freezer(stop: threading.Event, interval_s: float = DEFAULT_INTERVAL_S) -> threading.Thread:
    """Freeze survivors now and every ``interval_s`` until ``stop`` is set (a daemon thread)."""
    freeze_survivors()

    def run() -> None:
        count = 0
        while not stop.wait(interval_s):
            frozen = freeze_survivors()
            count += 1
            if count % REPORT_EVERY == 0:
                logger.info("gc: %d objects frozen", frozen)

    thread = threading.Thread(target=run, name="gc-freezer", daemon=True)
    thread.start()
    return thread
