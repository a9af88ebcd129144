"""Child processes that do not outlive their parent, even when it is killed with ``kill -9``."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(signum: int = signal.SIGTERM) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` for ``subprocess.Popen`` that ends the child when this process dies.

    On Linux the child asks the kernel (``prctl(PR_SET_PDEATHSIG)``) to send it ``signum``
    when its parent dies, then exits at once if the parent already died between the fork
    and the ``prctl`` (its parent pid is no longer this process's). Returns None elsewhere
    (no-op: ``preexec_fn=None``). The kernel signals on the death of the *thread* that
    forked, so call ``Popen`` from a thread that lives as long as the process (the main
    one). ``prctl`` is resolved here, before the fork, so the child only calls it,
    ``os.getppid`` and ``os._exit``: no import, lock or logging there, which is what makes
    a ``preexec_fn`` hazardous when the parent runs other threads (CPython's warning).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()
    number = int(signum)

    def preexec() -> None:
        if prctl(PR_SET_PDEATHSIG, number, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:
            os._exit(1)

    return preexec
