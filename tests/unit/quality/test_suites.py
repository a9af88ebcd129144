from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from quality.runner import is_fx_market_open
from quality.suites import RAW_TABLES, QualityLimits, pip_sql, spread_bound_sql, suites
from tickwave.config import MarketSettings
from tickwave.market import MarketCalendar


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (datetime(2026, 11, 20, 21, 59, tzinfo=UTC), True),  # Friday before the close (17:00 New York, winter)
        (datetime(2026, 11, 20, 22, 0, tzinfo=UTC), False),  # Friday at the close
        (datetime(2026, 11, 21, 12, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2026, 11, 22, 21, 30, tzinfo=UTC), False),  # Sunday before the open (was judged open at 21:00)
        (datetime(2026, 11, 22, 22, 0, tzinfo=UTC), True),  # Sunday at the open
        (datetime(2026, 7, 17, 21, 0, tzinfo=UTC), False),  # a summer Friday at the close (17:00 EDT)
        (datetime(2026, 11, 24, 3, 0, tzinfo=UTC), True),  # Tuesday
    ],
)
def test_is_fx_market_open_when_at_the_weekend_edges_then_closed_only_between_them(at: datetime, is_open: bool) -> None:
    assert is_fx_market_open(at, MarketCalendar.from_settings(MarketSettings())) is is_open


@pytest.mark.parametrize(
    ("at", "is_open"),
    [
        (datetime(2026, 12, 25, 4, 59, tzinfo=UTC), True),  # 24 Dec, 23:59 New York: the eve trades
        (datetime(2026, 12, 25, 5, 1, tzinfo=UTC), False),  # 25 Dec, 00:01 New York
        (datetime(2026, 12, 25, 15, 0, tzinfo=UTC), False),  # a Friday holiday's midday
        (datetime(2026, 12, 24, 15, 0, tzinfo=UTC), True),  # the day before
    ],
)
def test_is_fx_market_open_when_a_holiday_is_configured_then_closed_on_that_new_york_date(
    at: datetime, is_open: bool
) -> None:
    calendar = MarketCalendar.from_settings(MarketSettings(holidays=(date(2026, 12, 25),)))

    assert is_fx_market_open(at, calendar) is is_open


def test_suites_when_built_then_every_raw_table_has_blocking_key_checks_and_a_bounded_slice() -> None:
    built = suites(QualityLimits())

    assert set(built) == set(RAW_TABLES)
    for table, suite in built.items():
        expectations = suite.expectations(QualityLimits())
        assert any(str(item.severity.value) == "critical" for item in expectations), table
        if suite.time_column:
            sql = suite.slice_sql(1_000, 2_000)
            assert f"FROM {table} FINAL WHERE {suite.time_column} >=" in sql and "toInt64(2000)" in sql


def test_limits_when_rendered_then_registry_pips_and_bounds_come_first() -> None:
    limits = QualityLimits(pip_sizes={"XAUUSD": 0.01}, max_spread_pips={"XAUUSD": 80.0}, default_max_spread_pips=5.0)

    assert pip_sql(limits) == "multiIf(symbol = 'XAUUSD', 0.01, endsWith(symbol, 'JPY'), 0.01, 0.0001)"
    assert spread_bound_sql(limits) == "multiIf(symbol = 'XAUUSD', 80.0, 5.0)"
