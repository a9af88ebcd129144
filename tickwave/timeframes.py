"""The bar timeframes Tickwave builds and stores: MetaTrader 5's, by one canonical name each.

The warehouse keeps one table per timeframe, ``bars_<timeframe>`` (migrations 0001 and
0013), so configuration accepts exactly these names (and MT5's aliases, ``M1``, ``H4``,
``D1``...) and nothing the system could not store.

Bars up to an hour start on the Unix epoch's boundaries (a 5 min bar on the 5 minutes,
UTC). H4 and D1 bars start at the trading day's rollover (``market.rollover_time`` in
``market.timezone``, 17:00 New York by default) when ``streams.bar_alignment``
is ``rollover``, as MT5 brokers' server clocks put them; a D1 bar then lasts 23 or 25
hours on the days the zone changes its clocks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import tzinfo

from tickwave.timezones import WallClock, parse_timezone

TIMEFRAMES_MS: dict[str, int] = {
    "1s": 1_000,
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "30m": 1_800_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "1d": 86_400_000,
}
TIMEFRAMES: tuple[str, ...] = tuple(TIMEFRAMES_MS)
MT5_ALIASES: dict[str, str] = {
    "S1": "1s",
    "M1": "1m",
    "M5": "5m",
    "M15": "15m",
    "M30": "30m",
    "H1": "1h",
    "H4": "4h",
    "D1": "1d",
}
SESSION_TIMEFRAMES: frozenset[str] = frozenset({"4h", "1d"})  # aligned to the rollover when so configured


def timeframe_seconds_sql(column: str = "timeframe") -> str:
    """Return a ClickHouse expression for the seconds a bar of the timeframe in ``column`` spans.

    Generated from :data:`TIMEFRAMES_MS`, so SQL (the boards' panels) knows every timeframe
    this module does; a name it does not know gives 0. H4 and D1 bars aligned to a
    rollover in a zone with daylight saving last an hour more or less on the days it changes.
    """
    names = ", ".join(f"'{name}'" for name in TIMEFRAMES_MS)
    seconds = ", ".join(str(length_ms // 1000) for length_ms in TIMEFRAMES_MS.values())
    return f"transform(toString({column}), [{names}], [{seconds}], 0)"


def canonical_timeframe(text: str) -> str:
    """Return the canonical name of a timeframe (``"H1"`` and ``"1h"`` give ``"1h"``).

    Raises:
        ValueError: naming every timeframe the warehouse stores.
    """
    stripped = text.strip()
    if stripped in TIMEFRAMES_MS:
        return stripped
    alias = MT5_ALIASES.get(stripped.upper())
    if alias is not None:
        return alias
    raise ValueError(
        f"timeframe {text!r} is not one the warehouse stores: use {', '.join(TIMEFRAMES)} "
        f"(or MT5's {', '.join(MT5_ALIASES)})"
    )


def canonical_timeframes(texts: Iterable[str]) -> tuple[str, ...]:
    """Return the canonical names, each once, finest first.

    Raises:
        ValueError: for an unknown timeframe or an empty list.
    """
    names = {canonical_timeframe(text) for text in texts}
    if not names:
        raise ValueError(f"at least one timeframe is needed ({', '.join(TIMEFRAMES)})")
    return tuple(sorted(names, key=TIMEFRAMES_MS.__getitem__))


@dataclass(frozen=True)
class SessionAlignment:
    """Where H4 and D1 bars start: each trading day's rollover, a wall-clock time in a zone."""

    zone: tzinfo
    rollover_ms: int  # milliseconds after local midnight

    @classmethod
    def at(cls, zone: str, rollover_time: str) -> SessionAlignment:
        """Align to ``rollover_time`` (``HH:MM``) in ``zone`` (an IANA name or offset)."""
        hours, minutes = (int(part) for part in rollover_time.split(":"))
        return cls(parse_timezone(zone), (hours * 60 + minutes) * 60_000)

    def window(self, length_ms: int, time_ms: int) -> tuple[int, int]:
        """Return ``(start_ms, end_ms)`` in UTC of the window of ``length_ms`` holding ``time_ms``.

        Windows are ``rollover + k * length`` on the local wall clock, so they follow the
        zone's daylight saving: a window holding a change of offset is shorter or longer.
        """
        clock = WallClock(self.zone)
        local = clock.local_ms(time_ms) - self.rollover_ms
        local_start = local - local % length_ms + self.rollover_ms
        return _to_utc(clock, local_start), _to_utc(clock, local_start + length_ms)

    def nests(self, length_ms: int) -> bool:
        """Return True when epoch-aligned windows of ``length_ms`` never straddle a rollover boundary."""
        clock = WallClock(self.zone)
        offsets = {clock.offset_ms(clock.local_ms(sample)) for sample in _OFFSET_SAMPLES_MS}
        return all((self.rollover_ms - offset) % length_ms == 0 for offset in offsets)


# Mid-winter and mid-summer (2026): a zone's standard and daylight-saving offsets.
_OFFSET_SAMPLES_MS = (1_768_478_400_000, 1_784_116_800_000)


def _to_utc(clock: WallClock, local_ms: int) -> int:
    return local_ms - clock.offset_ms(local_ms)


def window_of(timeframe: str, length: int, time_ms: int, alignment: SessionAlignment | None = None) -> tuple[int, int]:
    """Return ``(start_ms, end_ms)`` of the ``timeframe`` window (``length`` ms) holding ``time_ms`` (UTC ms).

    With an ``alignment``, H4 and D1 windows start at its rollover; otherwise every window
    starts on the epoch's boundaries.
    """
    if alignment is not None and timeframe in SESSION_TIMEFRAMES:
        return alignment.window(length, time_ms)
    start = time_ms - time_ms % length
    return start, start + length
