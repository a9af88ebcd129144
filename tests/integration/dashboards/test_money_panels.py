"""The money panels on hand-computed fills: P&L today (execution's definition) and positions with their average entry.

P&L today = realized today + (unrealized now - unrealized at the rollover). EURUSD: long 1.0 lot
bought at 1.1000 before the rollover (mark there 1.1010), 0.4 sold at 1.1030 today, mark now 1.1050:
realized today 0.4 x (1.1030 - 1.1000) x 100,000 = 120; unrealized now 0.6 x (1.1050 - 1.1000) x
100,000 = 300; unrealized at the rollover 1.0 x (1.1010 - 1.1000) x 100,000 = 100: 120 + 300 - 100 = 320.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from dashboards.runner import AnalystRunner
from dashboards.sqlparts import rollover_expression
from dashboards.trader import trader_board
from execution.core.positions import Book
from tickwave.config import Settings
from tickwave.money import to_decimal

SETTINGS = Settings()
BOOKS: dict[str, Book] = {}  # the engine's books of the fills written (execution.core.positions)


def _ms(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)}, 'UTC')"


def _fill(fill_id: str, symbol: str, side: str, lots: float, price: float, at: datetime, commission: float = 0) -> str:
    """A fill row with what the engine books for it (the fills are listed in time order per symbol)."""
    signed = to_decimal(lots) if side == "buy" else -to_decimal(lots)
    booked = BOOKS.setdefault(symbol, Book()).book(signed, to_decimal(price), fill_id)
    realized = booked.realized * 100_000
    return (
        f"('{fill_id}', 'o-{fill_id}', 's-{fill_id}', '{symbol}', '{side}', {price}, {lots}, {commission}, "
        f"{_ms(at)}, 'm', 1, 'd-{fill_id}', {booked.position_before}, {booked.position_after}, "
        f"{booked.entry_value_after}, {realized}, {realized}, '{booked.round_trip_id}', "
        f"'{booked.opens_round_trip_id}')"
    )


def _bar(table: str, symbol: str, start: datetime, close: float) -> str:
    return (
        f"INSERT INTO {table} (symbol, timeframe, start_ms, end_ms, mid_open, mid_high, mid_low, mid_close) "
        f"VALUES ('{symbol}', 'x', {_ms(start)}, {_ms(start)}, {close}, {close}, {close}, {close})"
    )


@pytest.fixture
def money_database(warehouse_settings: Settings, fresh_database: str) -> tuple[Settings, str, datetime]:
    migrate(warehouse_settings, database=fresh_database)
    client = connect(warehouse_settings, database=fresh_database)
    try:
        rollover = client.query(f"SELECT toDateTime64({rollover_expression(SETTINGS.market)}, 3, 'UTC')").result_rows
        start: datetime = rollover[0][0].replace(tzinfo=UTC)
        now = datetime.now(tz=UTC)
        today = start + (now - start) / 2
        BOOKS.clear()
        fills = [
            _fill("a", "EURUSD", "buy", 1.0, 1.1000, start - timedelta(hours=2)),
            _fill("b", "EURUSD", "sell", 0.4, 1.1030, today, commission=2.0),
            # GBPUSD: a closed trip (flat), then two buys: the open position's average is 1.31
            _fill("c", "GBPUSD", "buy", 1.0, 1.2500, start - timedelta(hours=5)),
            _fill("d", "GBPUSD", "sell", 1.0, 1.2600, start - timedelta(hours=4)),
            _fill("e", "GBPUSD", "buy", 0.5, 1.3000, start - timedelta(hours=3)),
            _fill("f", "GBPUSD", "buy", 0.5, 1.3200, today),
            # AUDUSD: an average off the price grid, 0.462011 / 0.7 = 0.660015714...: shown at 5 digits
            _fill("g", "AUDUSD", "buy", 0.3, 0.66001, today),
            _fill("h", "AUDUSD", "buy", 0.4, 0.66002, today),
            # USDJPY: 0.33 bought at 151.001 today, mark now 151.0015: 0.33 x 0.0005 x 100,000 = 16.5 JPY
            _fill("i", "USDJPY", "buy", 0.33, 151.001, today),
        ]
        client.command(
            "INSERT INTO fills (fill_id, client_order_id, signal_id, symbol, side, price, quantity_lots, commission, "
            "filled_at_ms, model_id, model_version, broker_deal_id, position_before_lots, position_after_lots, "
            "entry_value_after, realized_pnl_quote, realized_pnl_account, round_trip_id, opens_round_trip_id) VALUES "
            + ", ".join(fills)
        )
        client.command(_bar("bars_1m", "EURUSD", start - timedelta(minutes=1), 1.1010))
        client.command(_bar("bars_1m", "EURUSD", today, 1.1040))  # a later minute: not the rollover's mark
        client.command(_bar("bars_1m", "GBPUSD", start - timedelta(minutes=1), 1.3000))
        client.command(_bar("bars_1s", "EURUSD", now - timedelta(seconds=30), 1.1050))
        client.command(_bar("bars_1s", "GBPUSD", now - timedelta(seconds=30), 1.3300))
        client.command(_bar("bars_1s", "USDJPY", now - timedelta(seconds=30), 151.0015))
    finally:
        client.close()
    return warehouse_settings, fresh_database, start


def _panel_rows(settings: Settings, database: str, title: str) -> dict[str, dict[str, object]]:
    [spec] = [spec for spec in trader_board(SETTINGS).panels if spec.title == title]
    runner = AnalystRunner(settings, database)
    try:
        result = runner.query(spec.sql)
    finally:
        runner.close()
    return {row[0]: dict(zip(result.names, row, strict=True)) for row in result.rows}


def test_pnl_today_when_position_carried_over_the_rollover_then_realized_plus_unrealized_change(
    money_database: tuple[Settings, str, datetime],
) -> None:
    settings, database, _ = money_database

    rows = _panel_rows(settings, database, "P&L today")

    assert rows["EURUSD"]["pnl_today"] == 320  # exact (the runner shows it as a float)
    assert rows["EURUSD"]["currency"] == "USD"
    assert rows["EURUSD"]["position_lots"] == 0.6
    assert rows["EURUSD"]["commission_today"] == pytest.approx(2.0)
    # GBPUSD: 0.5 at 1.30 carried (mark 1.30 at the rollover), 0.5 bought at 1.32 today, mark 1.33:
    # 0.5 x (1.33 - 1.30) + 0.5 x (1.33 - 1.32) = 0.02 -> 2,000
    assert rows["GBPUSD"]["pnl_today"] == 2000
    # shown at the quote currency's minor unit, half even: 16.5 JPY -> 16 (JPY has none)
    assert (rows["USDJPY"]["currency"], rows["USDJPY"]["pnl_today"]) == ("JPY", 16)
    assert rows["USDJPY"]["position_lots"] == 0.33


def test_positions_when_a_trip_closed_before_then_average_of_the_open_trip_only_at_the_symbols_digits(
    money_database: tuple[Settings, str, datetime],
) -> None:
    settings, database, _ = money_database

    rows = _panel_rows(settings, database, "Positions")

    assert rows["EURUSD"]["position_lots"] == pytest.approx(0.6)
    assert rows["EURUSD"]["average_price"] == 1.1
    assert rows["GBPUSD"]["position_lots"] == pytest.approx(1.0)
    assert rows["GBPUSD"]["average_price"] == 1.31
    assert rows["AUDUSD"]["average_price"] == 0.66002  # at the symbol's digits, not 0.6600157142857143
