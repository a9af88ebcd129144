"""Freed heap memory given back to the host (glibc's ``malloc_trim``)."""

from __future__ import annotations

import ctypes
from collections.abc import Callable


def heap_trimmer() -> Callable[[], None]:
    """Return a call of glibc's ``malloc_trim(0)``: the free pages of every malloc arena go back to the host.

    glibc keeps the pages a burst allocated and freed (a backlog's records, a large request)
    until told to trim; the call costs milliseconds. A no-op where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")  # glibc: the name, not a search (no program runs under confinement)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0) and None
