"""Wall-clock time zones: turn local clock readings (milliseconds) into UTC and back.

MetaTrader 5 stamps ticks with the broker's *server* clock and presents those readings
as if they were UTC (a tick at 10:00 server time in Athens arrives as 10:00 "UTC"). Files
exported from a terminal carry the same readings. Tickwave stores UTC only, so every
such reading passes through :meth:`WallClock.to_utc_ms` once, at the source.

A zone is either a fixed offset (``"+02:00"``, ``"UTC"``), exact all year, or an IANA
name (``"Europe/Athens"``), which follows daylight saving. For IANA zones the hour the
clocks repeat (end of summer time) is read as its first occurrence and a reading inside
the skipped hour (start of summer time) uses the offset before the jump: a server that
really repeats an hour therefore produces ticks that look out of order, and those go to
the dead-letter topic instead of silently overwriting earlier ones.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:  # numpy is imported where arrays are converted: config loading stays light
    import numpy as np
    import numpy.typing as npt

    IntArray = npt.NDArray[np.int64]

_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})$")
_EPOCH_NAIVE = datetime(1970, 1, 1)  # noqa: DTZ001 - local wall-clock readings are naive on purpose
_DAY_MS = 86_400_000
# Offsets are sampled at both ends of a batch; a batch longer than this is converted tick by tick.
_MAX_CONSTANT_SPAN_MS = 7 * _DAY_MS


def parse_timezone(text: str) -> tzinfo:
    """Return the zone named by ``text``: ``UTC``, ``+02:00``/``-0530``/``UTC+3:00``, or an IANA name.

    Raises:
        ValueError: naming the accepted forms.
    """
    stripped = text.strip()
    if stripped.upper() in ("UTC", "GMT", "Z", "+00:00"):
        return UTC
    match = _OFFSET.match(stripped.upper())
    if match:
        sign, hours, minutes = match.groups()
        delta = timedelta(hours=int(hours), minutes=int(minutes))
        if delta > timedelta(hours=14) or int(minutes) >= 60:
            raise ValueError(f"time zone offset {text!r} is out of range (at most +/-14:00)")
        return timezone(delta if sign == "+" else -delta)
    try:
        return ZoneInfo(stripped)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {text!r}: use UTC, a fixed offset such as +02:00, or an IANA name such as Europe/Athens"
        ) from exc


class WallClock:
    """Converts readings of one zone's wall clock (ms since 1970-01-01 local) to and from UTC ms."""

    def __init__(self, zone: tzinfo | str) -> None:
        """Use ``zone``, a tzinfo or any text :func:`parse_timezone` accepts."""
        self.zone = parse_timezone(zone) if isinstance(zone, str) else zone
        fixed = self.zone.utcoffset(None)
        # Fixed-offset zones answer without a date; IANA zones need one (they return None here).
        self._fixed_offset_ms = None if fixed is None else int(fixed.total_seconds() * 1000)

    def offset_ms(self, local_ms: int) -> int:
        """Return the zone's UTC offset (ms) at the local reading ``local_ms``."""
        if self._fixed_offset_ms is not None:
            return self._fixed_offset_ms
        local = _EPOCH_NAIVE + timedelta(milliseconds=int(local_ms))
        offset = local.replace(tzinfo=self.zone, fold=0).utcoffset()
        return 0 if offset is None else int(offset.total_seconds() * 1000)

    def to_utc_ms(self, local_ms: IntArray) -> IntArray:
        """Return the UTC instants of local wall-clock readings (vectorized)."""
        if self._fixed_offset_ms is not None or len(local_ms) == 0:
            return local_ms - (self._fixed_offset_ms or 0)
        first, last = int(local_ms.min()), int(local_ms.max())
        offset = self.offset_ms(first)
        if last - first <= _MAX_CONSTANT_SPAN_MS and self.offset_ms(last) == offset:
            return local_ms - offset
        # The batch straddles a change of offset (rare): convert reading by reading.
        import numpy as np

        offsets = np.fromiter((self.offset_ms(value) for value in local_ms.tolist()), np.int64, len(local_ms))
        return local_ms - offsets

    def local_ms(self, utc_ms: int) -> int:
        """Return the local wall-clock reading at the UTC instant ``utc_ms``."""
        if self._fixed_offset_ms is not None:
            return utc_ms + self._fixed_offset_ms
        moment = datetime.fromtimestamp(utc_ms / 1000, tz=UTC).astimezone(self.zone)
        offset = moment.utcoffset()
        return utc_ms + (0 if offset is None else int(offset.total_seconds() * 1000))
