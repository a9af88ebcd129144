"""The execution core's market table answers as the Python calendar it is generated from.

As the alert rules' SQL is held to the calendar on the warehouse, the table
(``execution/core/crate/src/market.rs``, built by :meth:`MarketCalendar.table`) is held to it
here: random instants over four years, the milliseconds around every change of offset, every
rollover and every midnight (holidays turn there), in zones with whole-, half- and
45-minute offsets and DST both ways, rollovers inside a skipped and a repeated hour, and
``always``.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tickwave.market import MarketCalendar

START_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
END_MS = int(datetime(2028, 1, 1, tzinfo=UTC).timestamp() * 1000)
HOLIDAYS = frozenset({date(2025, 12, 25), date(2026, 1, 1), date(2026, 7, 3), date(2026, 3, 9), date(2027, 11, 8)})

CALENDARS = {
    "new_york_fx_holidays": MarketCalendar("fx", ZoneInfo("America/New_York"), time(17, 0), HOLIDAYS),
    "new_york_always": MarketCalendar("always", ZoneInfo("America/New_York"), time(17, 0), HOLIDAYS),
    "rollover_in_the_skipped_hour": MarketCalendar("fx", ZoneInfo("America/New_York"), time(2, 30), frozenset()),
    "rollover_in_the_repeated_hour": MarketCalendar("fx", ZoneInfo("America/New_York"), time(1, 30), HOLIDAYS),
    "london_midnight": MarketCalendar("fx", ZoneInfo("Europe/London"), time(0, 0), HOLIDAYS),
    "lord_howe_half_hour_dst": MarketCalendar("fx", ZoneInfo("Australia/Lord_Howe"), time(2, 0), frozenset()),
    "eucla_45_minutes": MarketCalendar("fx", ZoneInfo("Australia/Eucla"), time(23, 59, 30), frozenset()),
    "kolkata": MarketCalendar("fx", ZoneInfo("Asia/Kolkata"), time(17, 0), HOLIDAYS),
}


def _offset_changes(zone: ZoneInfo) -> list[int]:
    # The UTC seconds (to the minute) at which the zone's offset changes, read independently of the table's build.
    seconds = range(START_MS // 1000, END_MS // 1000, 60)
    offsets = [datetime.fromtimestamp(second, zone).utcoffset() for second in seconds[::10]]
    found = []
    for index in range(len(offsets) - 1):
        if offsets[index] != offsets[index + 1]:
            window = seconds[index * 10 : index * 10 + 11]
            found += [
                b
                for a, b in itertools.pairwise(window)
                if datetime.fromtimestamp(a, zone).utcoffset() != datetime.fromtimestamp(b, zone).utcoffset()
            ]
    return found


def _wall_clock_instants(calendar: MarketCalendar) -> list[int]:
    # Every day's midnight and rollover, local, in both folds (a repeated hour has two), as UTC ms.
    instants = []
    day = date(2024, 1, 1)
    while day < date(2028, 1, 1):
        for wall in (time(0, 0), calendar.rollover):
            for fold in (0, 1):
                local = datetime.combine(day, wall, calendar.zone).replace(fold=fold)
                instants.append(int(local.timestamp() * 1000))
        day += timedelta(days=1)
    return instants


def _probes(calendar: MarketCalendar) -> list[int]:
    rng = random.Random(81)
    probes = [rng.randrange(START_MS, END_MS) for _ in range(20_000)]
    for change_s in _offset_changes(calendar.zone):
        probes += [change_s * 1000 + shift for shift in (-3_600_000, -1000, -1, 0, 1, 1000, 3_600_000)]
    for at_ms in _wall_clock_instants(calendar):
        probes += [at_ms - 1, at_ms, at_ms + 1]
    probes += [START_MS, START_MS + 1, END_MS - 1]
    return [ms for ms in probes if START_MS <= ms < END_MS]


@pytest.mark.parametrize("name", sorted(CALENDARS))
def test_market_table_when_asked_around_every_change_and_at_random_then_equals_the_python_calendar(
    name: str,
) -> None:
    calendar = CALENDARS[name]
    table = calendar.table(START_MS, END_MS)

    probes = _probes(calendar)
    differ = [
        ms
        for ms in probes
        if (table.is_open(ms), table.trading_day(ms)) != (calendar.is_open(ms), calendar.trading_day(ms).isoformat())
    ]

    assert not differ, f"{len(differ)} of {len(probes)} instants differ, first {differ[:3]}"
    assert len(table) > 4 * 365  # a change at least at every rollover
    assert table.span == (START_MS, END_MS)


def test_market_table_when_the_new_york_rollover_then_the_day_and_hours_turn_at_its_exact_millisecond() -> None:
    table = CALENDARS["new_york_fx_holidays"].table(START_MS, END_MS)
    summer_friday = int(datetime(2026, 7, 10, 21, 0, tzinfo=UTC).timestamp() * 1000)  # 17:00 EDT
    winter_sunday = int(datetime(2026, 1, 11, 22, 0, tzinfo=UTC).timestamp() * 1000)  # 17:00 EST

    assert [table.is_open(summer_friday + shift) for shift in (-1, 0, 1)] == [True, False, False]
    assert [table.trading_day(summer_friday + shift) for shift in (-1, 0)] == ["2026-07-10", "2026-07-11"]
    assert [table.is_open(winter_sunday + shift) for shift in (-1, 0)] == [False, True]
    christmas = int(datetime(2025, 12, 25, 12, 0, tzinfo=UTC).timestamp() * 1000)
    assert table.is_open(christmas) is False


def test_market_table_when_asked_outside_its_span_then_no_answer() -> None:
    table = CALENDARS["new_york_fx_holidays"].table(START_MS, END_MS)

    assert table.is_open(START_MS - 1) is None and table.trading_day(START_MS - 1) is None
    assert table.is_open(END_MS) is None and table.trading_day(END_MS) is None


def test_market_changes_when_listed_then_each_is_a_change_of_hours_or_day() -> None:
    calendar = CALENDARS["new_york_fx_holidays"]

    changes = calendar.changes(START_MS, END_MS)

    assert changes[0].at_ms == START_MS
    assert all(a.at_ms < b.at_ms and a[1:] != b[1:] for a, b in itertools.pairwise(changes))
    assert all(
        (change.is_open, change.trading_day)
        == (calendar.is_open(change.at_ms), calendar.trading_day(change.at_ms).isoformat())
        for change in changes
    )
