"""The alert rules' market-hours condition, generated from the Python calendar, agrees with it on the warehouse."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from adapters.warehouse.client import connect
from dashboards.alerts import market_open_expression
from tickwave.config import MarketSettings, Settings
from tickwave.market import MarketCalendar

HOLIDAYS = (date(2026, 12, 25), date(2027, 1, 1), date(2026, 3, 9))
# a grid over a year with a week around each DST change (US: 8 Mar and 1 Nov 2026), every edge
# (17:00 New York in winter and summer, midnight of a holiday) and the seconds either side of it
_EDGES = [
    datetime(2026, 3, 6, 21, 0, tzinfo=UTC),
    datetime(2026, 3, 8, 21, 0, tzinfo=UTC),
    datetime(2026, 10, 30, 21, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 22, 0, tzinfo=UTC),
    datetime(2026, 12, 25, 5, 0, tzinfo=UTC),
    datetime(2026, 12, 26, 5, 0, tzinfo=UTC),
    datetime(2027, 1, 1, 5, 0, tzinfo=UTC),
    datetime(2026, 3, 9, 4, 0, tzinfo=UTC),
    datetime(2026, 3, 10, 4, 0, tzinfo=UTC),
]
_START = datetime(2026, 1, 1, tzinfo=UTC)
GRID_MS = sorted(
    {int((_START + timedelta(minutes=37 * step)).timestamp() * 1000) for step in range(400 * 24 * 60 // 37)}
    | {int((edge + timedelta(seconds=shift)).timestamp() * 1000) for edge in _EDGES for shift in (-1, 0, 1)}
    | {int((edge + timedelta(minutes=shift)).timestamp() * 1000) for edge in _EDGES for shift in (-60, 60)}
)


def _sql_open(settings: Settings, market: MarketSettings) -> dict[int, bool]:
    expression = MarketCalendar.from_settings(market).open_sql("fromUnixTimestamp64Milli(ms, 'UTC')")
    client = connect(settings, database="system")
    try:
        rows = client.query(
            f"SELECT ms, {expression} FROM (SELECT arrayJoin({{grid:Array(Int64)}}) AS ms)",
            parameters={"grid": GRID_MS},
        ).result_rows
    finally:
        client.close()
    return {int(ms): bool(value) for ms, value in rows}


def test_open_sql_when_evaluated_on_the_warehouse_then_equals_the_python_calendar_with_holidays(
    warehouse_settings: Settings,
) -> None:
    market = MarketSettings(holidays=HOLIDAYS)
    calendar = MarketCalendar.from_settings(market)

    in_sql = _sql_open(warehouse_settings, market)

    differ = [ms for ms in GRID_MS if in_sql[ms] != calendar.is_open(ms)]
    assert not differ, f"{len(differ)} of {len(GRID_MS)} instants differ, first {differ[:3]}"
    christmas_small_hours = int(datetime(2026, 12, 25, 6, 0, tzinfo=UTC).timestamp() * 1000)
    assert in_sql[christmas_small_hours] is False


def test_market_open_expression_when_a_holiday_is_configured_then_the_stale_ticks_rule_reads_it() -> None:
    market = MarketSettings(holidays=HOLIDAYS)

    assert market_open_expression(market) == MarketCalendar.from_settings(market).open_sql("now()")
    assert "'2026-12-25'" in market_open_expression(market)
