"""Stop the Bytewax runtime on SIGTERM or SIGINT the way it stops cleanly, and say so in one line.

Bytewax stops cleanly on a ``KeyboardInterrupt`` raised where its run loop checks Python's
signals between activations: the workers unwind, the recovery store keeps its last snapshot,
and the next start resumes from it. Raised while a step's own Python code runs (a source's
``next_batch``), the same interrupt fails that step instead: the log ends in an error chain
naming the step, which an operator cannot tell from a real failure. So the handler raises
only when the interrupted frame is the one that called the runtime (the run loop's check),
and otherwise asks again 10 ms later (SIGALRM) until it lands there.

Bytewax unwinds its workers with a Rust panic, which Rust's default hook prints to standard
error (three lines and a blank one with ``RUST_BACKTRACE=0``). :class:`ShutdownPanicFilter` drops exactly
those lines, and only once a stop was asked for; everything else passes through unchanged.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from types import CodeType, FrameType, TracebackType
from typing import Final

RETRY_S: Final = 0.01
# What Rust's default panic hook prints when Bytewax unwinds its workers after a signal.
_SHUTDOWN_PANIC: Final = (
    re.compile(rb"^thread '[^']*' panicked at src/run\.rs:\d+:\d+:$"),
    re.compile(rb"^Box<dyn Any>$"),
    re.compile(rb"^note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace$"),
    re.compile(rb"^$"),  # the blank line after the note
)


def install_stop_handler(stopping: threading.Event, runtime_caller: CodeType) -> None:
    """On SIGTERM or SIGINT set ``stopping`` and interrupt the runtime where it stops cleanly.

    Args:
        stopping: set at the first signal; read by the process's other threads and by the filter.
        runtime_caller: the code of the function that calls the Bytewax runtime (``cli_main``).
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGALRM or stopping.is_set():
            stopping.set()
            os.environ["RUST_BACKTRACE"] = "0"  # read by Rust at the unwinding panic: three lines, no frames
            if frame is None or frame.f_code is runtime_caller:
                raise KeyboardInterrupt
            signal.setitimer(signal.ITIMER_REAL, RETRY_S)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM):
        signal.signal(signum, stop)


def is_requested_stop(error: BaseException, stopping: threading.Event) -> bool:
    """Whether ``error`` is the runtime ending because a stop was asked for (not a failure)."""
    if not stopping.is_set():
        return False
    return isinstance(error, KeyboardInterrupt) or isinstance(error.__cause__, KeyboardInterrupt)


class ShutdownPanicFilter:
    """Pass standard error (fd 2) through, less the runtime's unwinding panic once a stop was asked for.

    A context manager: entering puts a pipe on fd 2 read by a thread; leaving restores fd 2
    and waits for the thread to write out what is left. Child processes started inside
    inherit the pipe: their lines pass through the same way.
    """

    def __init__(self, stopping: threading.Event) -> None:
        self._stopping = stopping
        self._saved = -1
        self._thread: threading.Thread | None = None

    def __enter__(self) -> ShutdownPanicFilter:
        read_end, write_end = os.pipe()
        self._saved = os.dup(2)
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name="stderr-filter", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        os.dup2(self._saved, 2)  # the pipe's last writer here closes; children still holding it finish first
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._thread is None or not self._thread.is_alive():
            os.close(self._saved)  # else a child still writes through the pump: the descriptor goes with the process

    def _pump(self, read_end: int) -> None:
        with os.fdopen(read_end, "rb", buffering=0) as pipe:
            for line in pipe:
                if not (self._stopping.is_set() and is_shutdown_panic(line.rstrip(b"\n"))):
                    os.write(self._saved, line)


def is_shutdown_panic(line: bytes) -> bool:
    """Whether ``line`` is one of the lines Rust prints when Bytewax unwinds its workers."""
    return any(pattern.match(line) for pattern in _SHUTDOWN_PANIC)
