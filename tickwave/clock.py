"""The one clock every component is given: the system clock live, a manual clock in tests and replays."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Tells the time in UTC milliseconds since the epoch."""

    def now_ms(self) -> int:
        """Return the current time in UTC milliseconds."""
        ...


class SystemClock:
    """The wall clock."""

    def now_ms(self) -> int:
        """Return the wall-clock time in UTC milliseconds."""
        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock that moves only when told to (deterministic tests)."""

    def __init__(self, start_ms: int) -> None:
        self._now_ms = start_ms

    def now_ms(self) -> int:
        """Return the time last set."""
        return self._now_ms

    def advance(self, milliseconds: int) -> int:
        """Move forward and return the new time."""
        self._now_ms += milliseconds
        return self._now_ms

    def set(self, now_ms: int) -> None:
        """Jump to ``now_ms``."""
        self._now_ms = now_ms
