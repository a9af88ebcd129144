from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from tickwave.market import MarketCalendar

# Zones with whole-hour, half-hour and 45-minute offsets, and DST both ways.
ZONES = ["America/New_York", "Asia/Kolkata", "Australia/Eucla", "Europe/London", "Australia/Lord_Howe"]
YEAR_2024_MS = (
    int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000),
    int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000),
)


def _fresh_day(calendar: MarketCalendar, now_ms: int) -> object:
    return replace(calendar).trading_day(now_ms)  # a new calendar: nothing remembered


@given(
    zone=st.sampled_from(ZONES),
    rollover=st.sampled_from([time(17, 0), time(0, 0), time(2, 30), time(1, 15), time(23, 59)]),
    start_ms=st.integers(*YEAR_2024_MS),
    steps_ms=st.lists(st.integers(-3_000, 3_000), min_size=1, max_size=40),
)
def test_trading_day_when_asked_in_any_order_around_any_instant_then_same_as_a_fresh_calendar(
    zone: str, rollover: time, start_ms: int, steps_ms: list[int]
) -> None:
    # Instants a few seconds apart cross rollovers and DST changes (the start is anywhere in a year).
    calendar = MarketCalendar("fx", ZoneInfo(zone), rollover, frozenset())
    now_ms = start_ms
    for step in steps_ms:
        now_ms += step
        assert calendar.trading_day(now_ms) == _fresh_day(calendar, now_ms)


def _offset_changes(zone: ZoneInfo) -> list[int]:
    """The UTC seconds of 2024 (to the ten minutes) at which the zone's offset changes."""
    seconds = range(YEAR_2024_MS[0] // 1000, YEAR_2024_MS[1] // 1000, 600)
    offsets = [datetime.fromtimestamp(second, zone).utcoffset() for second in seconds]
    return [seconds[index + 1] for index in range(len(offsets) - 1) if offsets[index] != offsets[index + 1]]


def test_trading_day_when_walked_across_offset_changes_then_same_as_a_fresh_calendar() -> None:
    # Rollovers in the skipped and repeated hours too: the day a cached span names must hold at every instant in it.
    for zone in map(ZoneInfo, ZONES):
        for rollover in (time(17, 0), time(0, 0), time(1, 0), time(1, 30), time(2, 0), time(2, 30), time(3, 0)):
            calendar = MarketCalendar("fx", zone, rollover, frozenset())
            for change in _offset_changes(zone):
                for now_ms in range((change - 30 * 3600) * 1000, (change + 30 * 3600) * 1000, 7 * 60_000):
                    assert calendar.trading_day(now_ms) == _fresh_day(calendar, now_ms), (zone, rollover, now_ms)


@given(zone=st.sampled_from(ZONES), second=st.integers(YEAR_2024_MS[0] // 1000, YEAR_2024_MS[1] // 1000))
def test_trading_day_when_the_rollover_second_then_the_day_turns_exactly_at_it(zone: str, second: int) -> None:
    # Every millisecond of the second before the rollover answers the old day, from it the new one.
    rollover = datetime.fromtimestamp(second, ZoneInfo(zone)).time()
    calendar = MarketCalendar("fx", ZoneInfo(zone), rollover, frozenset())
    for now_ms in (second * 1000 - 1000, second * 1000 - 1, second * 1000, second * 1000 + 999):
        assert calendar.trading_day(now_ms) == _fresh_day(calendar, now_ms)
