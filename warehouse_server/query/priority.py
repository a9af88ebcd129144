"""The warehouse's CPU priorities: the process yields to the hot path, a read-only user to the writers.

On a small machine the CPU, not the GIL, is what an analyst's work takes from the
pipeline's inserts (the engine parses and the decoders release the GIL). Two levels:

- :func:`lower_cpu_priority`: the whole process, and its session, yield to the other
  services (the streams and execution processes) by ``clickhouse.nice``.
- :func:`lowest_thread_priority`: the thread a read-only user's request is decoded,
  planned and vetted in runs at the lowest priority there is (niceness 19), so however
  many analysts send work, the writers' threads are scheduled first (a nice-19 thread
  weighs 15 to a nice-10 thread's 110 in Linux's fair scheduler). Raising a thread's
  niceness needs no privilege; lowering it again would, so this is done only to a thread
  that does nothing else.
- :class:`ServerPriority`: a thread inherits its creator's niceness, and the engine starts
  its threads (a connection's, its pools') from whichever thread calls it; a pool thread
  started from the nice-19 thread would stay at 19 when the pool later gives it a writer's
  query. So the nice-19 thread never calls the engine itself: its engine calls run on one
  thread started with the server at the server's priority, and wait for it.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

LOWEST_NICENESS = 19
T = TypeVar("T")
_this_thread = threading.local()


def lower_cpu_priority(niceness: int) -> None:
    """Raise the niceness of this process's every thread by ``niceness``, and its session's on Linux.

    A niceness is a thread's on Linux: the threads started before this call (the
    allocator's, a library's started at import) are raised one by one. The supervisor
    starts each service in a session of its own, and Linux's autogroup scheduling shares
    the CPU fairly between sessions whatever a process's own nice value: the session's
    nice (``/proc/self/autogroup``) is what yields to the others.
    """
    if niceness <= 0:
        return
    tasks = Path("/proc/self/task")
    for thread in [int(task.name) for task in tasks.iterdir()] if tasks.exists() else [0]:
        try:
            current = os.getpriority(os.PRIO_PROCESS, thread)
            os.setpriority(os.PRIO_PROCESS, thread, min(LOWEST_NICENESS, current + niceness))
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    autogroup = Path("/proc/self/autogroup")
    if autogroup.exists():
        try:
            autogroup.write_text(f"{niceness}\n")
        except OSError as exc:  # not permitted here: the process's own niceness still applies
            logger.info("could not lower the session's CPU priority: %s", exc)


def lowest_thread_priority() -> None:
    """Give the calling thread (only) the lowest CPU priority: a thread pool's initializer."""
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), LOWEST_NICENESS)
    _this_thread.is_lowest = True


class ServerPriority:
    """Runs the engine calls of the lowest-priority threads on a thread of the server's own priority.

    Made where the engine is opened, after the process lowered its priority: its thread is started
    then, from the server's thread, so it and every thread the engine starts from it keep the
    server's niceness. Other threads call through directly.
    """

    def __init__(self) -> None:
        """Start the thread that makes the calls."""
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="warehouse-engine-calls", daemon=True)
        self._thread.start()

    def call(self, function: Callable[[], T]) -> T:
        """Return ``function()``, run on the server-priority thread if the caller is at the lowest priority."""
        if not getattr(_this_thread, "is_lowest", False):
            return function()
        future: Future[T] = Future()
        self._calls.put((future, function))
        return future.result()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            future, function = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(function())
            except BaseException as exc:  # handed to the caller, which raises it
                future.set_exception(exc)

    def close(self) -> None:
        """Stop the thread once the calls queued before are made."""
        self._calls.put(None)
        self._thread.join()
