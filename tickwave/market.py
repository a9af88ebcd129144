"""When the market trades, and when the trading day rolls over: New York time, with holidays.

The FX week opens on Sunday at 17:00 New York time and closes on Friday at 17:00 (22:00
UTC in northern winter, 21:00 in summer): the clock is America/New_York, not a fixed UTC
hour. The trading day rolls over at the same 17:00 (configurable): a trading day is named
by the New York date on which it ends. Holidays (New York dates, from the configuration)
are closed all day. The execution process, the data-quality freshness checks and the alert
rules judge market hours by this one rule: the alert rules through :meth:`MarketCalendar.open_sql`,
the same rule rendered as a ClickHouse expression.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from tickwave.config import MarketSettings

_SUNDAY, _FRIDAY, _SATURDAY = 6, 4, 5


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
