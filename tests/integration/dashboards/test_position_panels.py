"""Positions and P&L today read each symbol's bookings from fill_positions and fill_positions_daily, not every fill.

Positions reads each symbol's latest booking (fill_positions); P&L today its latest booking and its
latest before the rollover (fill_positions_daily, one row per symbol and UTC day, and the fills of the
rollover's UTC day before it). The answers equal the same panels read straight from the booked fills
(the rule before the tables existed) and the engine's books (execution.core.positions), for fills booked
before the tables' migration (its back-fill) and after it (its materialized view), with a reversal
and fractional lots; and the rows they read stay the same when a symbol's booked history doubles over
the same days, for a symbol filled today too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import apply_migrations, load_migrations
from dashboards.runner import AnalystRunner
from dashboards.sqlparts import rollover_expression
from dashboards.trader import BOOKED_FILLS, DAY_BOOKINGS, LATEST_BOOKINGS, trader_board
from execution.core.positions import Book
from tickwave.config import Settings
from tickwave.money import to_decimal

SETTINGS = Settings()
TABLE_MIGRATION = 22  # creates fill_positions, its view and its back-fill
HISTORY = 30_000  # booked fills before the panels' window: several granules of 8,192 rows
COLUMNS = (
    "fill_id, client_order_id, signal_id, symbol, side, price, quantity_lots, commission, filled_at_ms, model_id, "
    "model_version, broker_deal_id, position_before_lots, position_after_lots, entry_value_after, "
    "realized_pnl_quote, realized_pnl_account, round_trip_id, opens_round_trip_id"
)
# The panels' latest bookings read straight from every booked fill: the rule before fill_positions.
FROM_EVERY_FILL = (
    "SELECT symbol, argMax(position_after_lots, (filled_at_ms, fill_id)) AS lots, "
    "argMax(entry_value_after, (filled_at_ms, fill_id)) AS entry_value, max(filled_at_ms) AS last_fill_at "
    f"FROM ({BOOKED_FILLS}) GROUP BY symbol"
)
# P&L today's bookings read straight from every booked fill: the latest, and the latest before the rollover.
FROM_EVERY_FILL_AT_ROLLOVER = (
    "SELECT symbol, argMax(position_after_lots, (filled_at_ms, fill_id)) AS lots, "
    "argMax(entry_value_after, (filled_at_ms, fill_id)) AS entry_value, "
    "ifNull(argMaxIf(position_after_lots, (filled_at_ms, fill_id), filled_at_ms < rollover), 0) "
    "AS lots_at_rollover, "
    "ifNull(argMaxIf(entry_value_after, (filled_at_ms, fill_id), filled_at_ms < rollover), 0) "
    "AS entry_value_at_rollover "
    f"FROM ({BOOKED_FILLS}) GROUP BY symbol"
)
# Each panel's bookings, and the same read from every booked fill.
BOOKINGS = {"Positions": (LATEST_BOOKINGS, FROM_EVERY_FILL), "P&L today": (DAY_BOOKINGS, FROM_EVERY_FILL_AT_ROLLOVER)}


def _ms(moment: datetime) -> str:
    return f"fromUnixTimestamp64Milli({int(moment.timestamp() * 1000)}, 'UTC')"


class Fills:
    """Fill rows with what the engine books for each (written in time order per symbol)."""

    def __init__(self) -> None:
        self.books: dict[str, Book] = {}
        self.rows: list[str] = []

    def add(self, fill_id: str, symbol: str, side: str, lots: str, price: str, at: datetime) -> None:
        signed = to_decimal(lots) if side == "buy" else -to_decimal(lots)
        booked = self.books.setdefault(symbol, Book()).book(signed, to_decimal(price), fill_id)
        realized = booked.realized * 100_000
        self.rows.append(
            f"('{fill_id}', 'o-{fill_id}', 's-{fill_id}', '{symbol}', '{side}', {price}, {lots}, 0.5, {_ms(at)}, "
            f"'m', 1, 'd-{fill_id}', {booked.position_before}, {booked.position_after}, {booked.entry_value_after}, "
            f"{realized}, {realized}, '{booked.round_trip_id}', '{booked.opens_round_trip_id}')"
        )

    def write(self, client: Client) -> None:
        client.command(f"INSERT INTO fills ({COLUMNS}) VALUES " + ", ".join(self.rows))
        self.rows.clear()


def _rollover(client: Client) -> datetime:
    rows = client.query(f"SELECT toDateTime64({rollover_expression(SETTINGS.market)}, 3, 'UTC')").result_rows
    start: datetime = rows[0][0].replace(tzinfo=UTC)
    return start


def _migrate(client: Client, database: str, below: int | None = None) -> None:
    migrations = [m for m in load_migrations() if below is None or m.version < below]
    apply_migrations(client, database, migrations)


def _panel_sql(title: str) -> str:
    [spec] = [spec for spec in trader_board(SETTINGS).panels if spec.title == title]
    return spec.sql


def _rows(settings: Settings, database: str, sql: str) -> tuple[list[str], list[list[object]]]:
    runner = AnalystRunner(settings, database)
    try:
        result = runner.query(sql)
        return result.types, result.rows
    finally:
        runner.close()


@pytest.fixture
def booked(warehouse_settings: Settings, fresh_database: str) -> tuple[Settings, str, Fills]:
    """Fills booked before the table's migration (back-filled) and after it (through the view)."""
    client = connect(warehouse_settings, database=fresh_database)
    try:
        _migrate(client, fresh_database, below=TABLE_MIGRATION)
        start = _rollover(client)
        today = start + (datetime.now(tz=UTC) - start) / 2
        fills = Fills()
        # EURUSD: long 1.0, reversed to short 0.5 before the rollover; GBPUSD: fractional lots, not traded today
        fills.add("a", "EURUSD", "buy", "1.0", "1.1000", start - timedelta(days=3))
        fills.add("b", "EURUSD", "sell", "1.5", "1.1030", start - timedelta(hours=2))
        fills.add("c", "GBPUSD", "buy", "0.37", "1.25003", start - timedelta(days=2))
        fills.add("d", "GBPUSD", "buy", "0.21", "1.26001", start - timedelta(hours=1))
        fills.write(client)
        _migrate(client, fresh_database)  # the table, its view and the back-fill of a, b, c, d
        _migrate(client, fresh_database)  # a second run applies nothing
        # after the migration: EURUSD reversed back to long 0.33 today, USDJPY and AUDUSD opened today
        fills.add("e", "EURUSD", "buy", "0.83", "1.1010", today)
        fills.add("f", "USDJPY", "buy", "0.01", "151.001", today)
        fills.add("g", "USDJPY", "buy", "0.02", "151.005", today + timedelta(seconds=1))
        # AUDUSD opened after the rollover on the rollover's UTC day: flat at the rollover all the same
        fills.add("h", "AUDUSD", "buy", "0.05", "0.66010", start + min(timedelta(minutes=30), (today - start) / 2))
        fills.write(client)
        client.command(  # fill b written again (at least once): a newer copy of the same booking
            f"INSERT INTO fills ({COLUMNS}) SELECT {COLUMNS} FROM fills FINAL WHERE fill_id = 'b' AND symbol = 'EURUSD'"
        )
        client.command(
            f"INSERT INTO bars_1m (symbol, timeframe, start_ms, end_ms, mid_close) VALUES "
            f"('EURUSD', 'x', {_ms(start - timedelta(minutes=1))}, {_ms(start)}, 1.1020), "
            f"('GBPUSD', 'x', {_ms(start - timedelta(minutes=1))}, {_ms(start)}, 1.2700), "
            f"('USDJPY', 'x', {_ms(today)}, {_ms(today)}, 151.010)"
        )
    finally:
        client.close()
    return warehouse_settings, fresh_database, fills


@pytest.mark.parametrize("title", ["Positions", "P&L today"])
def test_panel_when_booked_before_and_after_the_table_then_the_same_as_from_every_booked_fill(
    booked: tuple[Settings, str, Fills], title: str
) -> None:
    settings, database, _ = booked
    sql = _panel_sql(title)
    bookings, from_every_fill = BOOKINGS[title]

    types, rows = _rows(settings, database, sql)
    reference = _rows(settings, database, sql.replace(bookings, from_every_fill))

    assert bookings in sql
    assert [row[0] for row in rows] == ["AUDUSD", "EURUSD", "GBPUSD", "USDJPY"]
    assert (types, rows) == reference


def test_positions_when_booked_before_and_after_the_table_then_the_engines_position_and_entry_value(
    booked: tuple[Settings, str, Fills],
) -> None:
    settings, database, fills = booked

    client = connect(settings, database=database)
    try:
        latest = client.query(LATEST_BOOKINGS).result_rows
    finally:
        client.close()

    got = {str(symbol): (lots, value) for symbol, lots, value, _ in latest}
    assert got == {symbol: (book.lots, book.entry_value()) for symbol, book in fills.books.items()}
    assert got["EURUSD"] == (to_decimal("0.33"), to_decimal("0.33") * to_decimal("1.1010"))  # reversed twice
    assert got["GBPUSD"][0] == to_decimal("0.58")


def _state(book: Book) -> tuple[object, object]:
    return book.lots, book.entry_value()


def test_day_bookings_when_booked_before_and_after_the_table_then_the_engines_books_now_and_at_the_rollover(
    booked: tuple[Settings, str, Fills],
) -> None:
    settings, database, fills = booked
    at_rollover: dict[str, Book] = {}
    for fill_id, symbol, signed, price in (  # the fixture's fills before the rollover, in order
        ("a", "EURUSD", "1.0", "1.1000"),
        ("b", "EURUSD", "-1.5", "1.1030"),
        ("c", "GBPUSD", "0.37", "1.25003"),
        ("d", "GBPUSD", "0.21", "1.26001"),
    ):
        at_rollover.setdefault(symbol, Book()).book(to_decimal(signed), to_decimal(price), fill_id)

    client = connect(settings, database=database)
    try:
        rows = client.query(f"WITH {rollover_expression(SETTINGS.market)} AS rollover {DAY_BOOKINGS}").result_rows
    finally:
        client.close()

    got = {str(symbol): tuple(values) for symbol, *values in rows}
    assert got == {
        symbol: (*_state(book), *_state(at_rollover.get(symbol, Book()))) for symbol, book in fills.books.items()
    }
    assert got["EURUSD"][2] == to_decimal("-0.5")  # reversed to short before the rollover
    assert got["USDJPY"][2:] == got["AUDUSD"][2:] == (0, 0)  # opened today: flat at the rollover


def _history(client: Client, rows: int, before: datetime, symbol: str) -> None:
    """``rows`` booked fills of ``symbol`` spread over the 20 days ending 40 days before ``before``."""
    end_ms = int((before - timedelta(days=40)).timestamp() * 1000)
    step_ms = 20 * 86_400_000 // rows  # twice the rows over the same days: the same days' rows
    client.command(
        f"INSERT INTO fills ({COLUMNS}) SELECT concat('h', toString(number)), 'o', 's', '{symbol}', 'buy', 1.25, "
        f"0.01, 0, fromUnixTimestamp64Milli(toInt64({end_ms} - number * {step_ms}), 'UTC'), 'm', 1, 'd', 0, 0.01, "
        f"0.0125, 0, 0, 't', 't' FROM numbers({rows})"
    )


def _read_rows(settings: Settings, database: str, sql: str) -> int:
    runner = AnalystRunner(settings, database)
    try:
        response = runner.client.post(runner.url, params=runner.params, content=sql.encode())
    finally:
        runner.close()
    assert response.status_code == 200, response.text
    return int(json.loads(response.headers["X-ClickHouse-Summary"])["read_rows"])


def _panels_read_rows(settings: Settings, database: str, history: int) -> dict[str, int]:
    client = connect(settings, database=database)
    try:
        _migrate(client, database)
        start = _rollover(client)
        _history(client, history, start, "GBPUSD")  # not filled today
        _history(client, history, start, "EURUSD")  # filled today: its start of day is read
        fills = Fills()
        fills.add("p", "GBPUSD", "sell", "0.01", "1.2600", start - timedelta(hours=1))
        fills.add("q", "EURUSD", "buy", "0.2", "1.1000", start + (datetime.now(tz=UTC) - start) / 2)
        fills.write(client)
    finally:
        client.close()
    return {title: _read_rows(settings, database, _panel_sql(title)) for title in ("Positions", "P&L today")}


def test_panels_when_the_fills_history_doubles_then_the_rows_read_stay_the_same(
    warehouse_settings: Settings, fresh_database: str
) -> None:
    settings, database = warehouse_settings, fresh_database
    admin = connect(settings, database="default")
    try:
        admin.command(f"CREATE DATABASE {database}_twice")
    finally:
        admin.close()
    try:
        once = _panels_read_rows(settings, database, HISTORY)
        twice = _panels_read_rows(settings, f"{database}_twice", 2 * HISTORY)
    finally:
        admin = connect(settings, database="default")
        try:
            admin.command(f"DROP DATABASE IF EXISTS {database}_twice SYNC")
        finally:
            admin.close()

    assert once == twice
    assert all(rows < HISTORY for rows in once.values()), once
