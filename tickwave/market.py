"""When the market trades, and when the trading day rolls over: New York time, with holidays.

The FX week opens on Sunday at 17:00 New York time and closes on Friday at 17:00 (22:00
UTC in northern winter, 21:00 in summer): the clock is America/New_York, not a fixed UTC
hour. The trading day rolls over at the same 17:00 (configurable): a trading day is named
by the New York date on which it ends. Holidays (New York dates, from the configuration)
are closed all day. The execution process, the data-quality freshness checks and the alert
rules judge market hours by this one rule: the alert rules through :meth:`MarketCalendar.open_sql`,
the same rule rendered as a ClickHouse expression; the execution core (its replay) through
:meth:`MarketCalendar.table`, the rule's changes over a span, generated here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, NamedTuple
from zoneinfo import ZoneInfo

import tickwave_core

from tickwave.config import MarketSettings

_SUNDAY, _FRIDAY, _SATURDAY = 6, 4, 5
_EPOCH = date(1970, 1, 1)
_DAY_US = 86_400_000_000
_OFFSET_PROBE_S = 3600  # offsets are read hourly, then the change is found to the second


class MarketChange(NamedTuple):
    """From ``at_ms`` on (until the next change), whether the market is open and the trading day's ISO name."""

    at_ms: int
    is_open: bool
    trading_day: str


@dataclass(frozen=True)
class MarketCalendar:
    """Trading hours and the daily rollover in one time zone."""

    hours: Literal["fx", "always"]
    zone: ZoneInfo
    rollover: time
    holidays: frozenset[date]
    # (UTC ms from, to, its trading day): the day last answered, between two rollovers of one UTC offset (local
    # time runs with UTC there: every instant has that day). Streams and replays ask within a day: 2.3 -> 0.2 us.
    _last_day: list[tuple[int, int, date]] = field(default_factory=list, init=False, repr=False, compare=False)

    @classmethod
    def from_settings(cls, settings: MarketSettings) -> MarketCalendar:
        """Read hours, zone, rollover time and holidays from the ``market`` settings."""
        hour, minute = (int(part) for part in settings.rollover_time.split(":"))
        return cls(settings.hours, ZoneInfo(settings.timezone), time(hour, minute), frozenset(settings.holidays))

    def local(self, now_ms: int) -> datetime:
        """Return ``now_ms`` as a wall-clock time of the market's zone."""
        return datetime.fromtimestamp(now_ms / 1000, tz=self.zone)

    def trading_day(self, now_ms: int) -> date:
        """Return the trading day ``now_ms`` belongs to: the local date on which it ends at the rollover."""
        if self._last_day and self._last_day[0][0] <= now_ms < self._last_day[0][1]:
            return self._last_day[0][2]
        local = self.local(now_ms)
        day = local.date() + timedelta(days=local.time() >= self.rollover)
        start_ms, end_ms = (
            int(datetime.combine(on, self.rollover, self.zone).timestamp() * 1000)
            for on in (day - timedelta(days=1), day)
        )
        # Not across a change of offset (a rollover in a skipped or repeated hour is another instant); ms exact.
        if not self.rollover.microsecond and self.local(start_ms).utcoffset() == self.local(end_ms - 1).utcoffset():
            self._last_day[:] = [(start_ms, end_ms, day)]
        return day

    def is_open(self, now_ms: int) -> bool:
        """Return False from Friday's rollover to Sunday's and on holidays (``always`` never closes)."""
        if self.hours == "always":
            return True
        local = self.local(now_ms)
        weekday, at = local.weekday(), local.time()
        if weekday == _SATURDAY or local.date() in self.holidays:
            return False
        if weekday == _FRIDAY:
            return at < self.rollover
        return weekday != _SUNDAY or at >= self.rollover

    def open_sql(self, at: str) -> str:
        """Render :meth:`is_open` as a ClickHouse expression (1 open, 0 closed) of the DateTime SQL ``at``.

        Alert rules are SQL evaluated by Grafana, so the rule is generated from this calendar
        (zone, rollover, holidays) instead of copied; a test compares the two on the warehouse.
        """
        if self.hours == "always":
            return "1"
        local = f"toTimeZone({at}, '{self.zone.key}')"
        second = f"(toHour({local}) * 3600 + toMinute({local}) * 60 + toSecond({local}))"
        roll = self.rollover.hour * 3600 + self.rollover.minute * 60 + self.rollover.second
        day = f"toDayOfWeek({local})"  # ClickHouse: Monday 1 .. Sunday 7
        closed = f"({day} = 5 AND {second} >= {roll}) OR {day} = 6 OR ({day} = 7 AND {second} < {roll})"
        if self.holidays:
            listed = ", ".join(f"'{holiday.isoformat()}'" for holiday in sorted(self.holidays))
            closed = f"toDate({local}) IN ({listed}) OR {closed}"
        return f"toUInt8(NOT ({closed}))"

    def changes(self, start_ms: int, end_ms: int) -> list[MarketChange]:
        """List the instants of ``[start_ms, end_ms)`` where :meth:`is_open` or :meth:`trading_day` changes.

        The first entry is the state at ``start_ms``. Both rules read the local wall clock only
        through its date, weekday and whether it is past the rollover, so they change only where
        the wall clock passes a midnight or the rollover, or jumps at a change of the zone's
        offset: those instants are the candidates, each judged by the two methods themselves.
        """
        candidates = {start_ms}
        for begin_s, finish_s, offset_s in self._offset_spans(start_ms // 1000 - 1, end_ms // 1000 + 1):
            candidates.add(begin_s * 1000)
            first = (datetime.fromtimestamp(begin_s, UTC) + timedelta(seconds=offset_s)).date() - timedelta(days=1)
            last = (datetime.fromtimestamp(finish_s, UTC) + timedelta(seconds=offset_s)).date() + timedelta(days=1)
            for day in range((first - _EPOCH).days, (last - _EPOCH).days + 1):
                for wall_us in (0, self._rollover_us()):
                    at_us = day * _DAY_US + wall_us - offset_s * 1_000_000
                    if begin_s * 1_000_000 < at_us < finish_s * 1_000_000:
                        candidates.add(-(-at_us // 1000))  # the first millisecond at or after it
        result: list[MarketChange] = []
        for at_ms in sorted(ms for ms in candidates if start_ms <= ms < end_ms):
            change = MarketChange(at_ms, self.is_open(at_ms), self.trading_day(at_ms).isoformat())
            if not result or result[-1][1:] != change[1:]:
                result.append(change)
        return result

    def table(self, start_ms: int, end_ms: int) -> tickwave_core.MarketTable:
        """Return the execution core's table of :meth:`changes` over ``[start_ms, end_ms)`` (``market.rs``).

        A replay asks for its timeline's span plus a margin for what comes due after its last row
        (the core's table answers nothing outside it). About 365 changes a year: 10 ms to build a
        year, 0.1 s ten years; in the core 16 bytes a change and one short string a day.
        """
        return tickwave_core.MarketTable(self.changes(start_ms, end_ms), end_ms)

    def _rollover_us(self) -> int:
        at = self.rollover
        return ((at.hour * 60 + at.minute) * 60 + at.second) * 1_000_000 + at.microsecond

    def _offset_spans(self, start_s: int, end_s: int) -> list[tuple[int, int, int]]:
        # (from, to, UTC offset) in seconds: the zone's offset over [start_s, end_s), each change found
        # to the second (read hourly: two changes less than an hour apart would hide each other).
        def offset(second: int) -> int:
            delta = datetime.fromtimestamp(second, self.zone).utcoffset()
            return int(delta.total_seconds()) if delta is not None else 0

        spans: list[tuple[int, int, int]] = []
        begin, current = start_s, offset(start_s)
        probe = start_s
        while probe < end_s:
            following = min(probe + _OFFSET_PROBE_S, end_s)
            if offset(following) != current:
                low, high = probe, following  # offset(low) == current != offset(high)
                while high - low > 1:
                    middle = (low + high) // 2
                    low, high = (middle, high) if offset(middle) == current else (low, middle)
                spans.append((begin, high, current))
                begin, current = high, offset(high)
            probe = following
        spans.append((begin, end_s, current))
        return spans
