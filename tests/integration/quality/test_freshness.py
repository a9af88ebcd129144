"""The freshness check judges ticks by the configured market calendar: none is due on a configured holiday."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta

import pytest

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from quality.runner import validate_table
from tickwave.config import MarketSettings, Settings
from tickwave.market import MarketCalendar

CHRISTMAS_MIDDAY = datetime(2026, 12, 25, 17, 0, tzinfo=UTC)  # a Friday, 12:00 New York
LAST_TICK = datetime(2026, 12, 25, 4, 0, tzinfo=UTC)  # 24 Dec, 23:00 New York


@pytest.mark.parametrize(("holidays", "fresh"), [((date(2026, 12, 25),), True), ((), False)])
def test_validate_table_when_a_holiday_is_configured_then_no_stale_ticks_on_that_day(
    warehouse_settings: Settings, holidays: tuple[date, ...], fresh: bool
) -> None:
    database = f"dq_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    client = connect(warehouse_settings, database=database)
    try:
        rows = [
            ["EURUSD", LAST_TICK - timedelta(seconds=step), step, 1.1, 1.1001, 0.0, 1.0, 6, "test"]
            for step in range(100)
        ]
        client.insert(
            "ticks", rows, column_names=["symbol", "time_ms", "seq", "bid", "ask", "last", "volume", "flags", "source"]
        )
        calendar = MarketCalendar.from_settings(MarketSettings(holidays=holidays))

        outcome = validate_table(client, "ticks", calendar=calendar, now=CHRISTMAS_MIDDAY)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()

    freshness = [item for item in outcome.outcomes if "newest_age_minutes" in item.check_name]
    assert len(freshness) == 1
    assert freshness[0].is_success is fresh
