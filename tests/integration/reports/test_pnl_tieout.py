"""The marts' and compliance views' positions, round trips and P&L equal what the engine booked, exactly.

Hypothesis generates fill sequences (lots in steps of 0.01, reversals and flips through zero, the
0.1 + 0.2 - 0.3 case always among them) on several symbols, each sequence on its own UTC day, so one
real dbt build on the real warehouse checks all of them (a build takes ~10 s: one per example would
not fit the suite's budget). The fills go through the real engine's booking (``Engine.booked`` then
``Engine.apply``, as the execution service records a broker's answer) and the real audit loader's
sink. Expected figures come from the engine alone: its bookings per fill, its books at each day's end
valued at that day's mark.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from adapters.warehouse.writer import BatchWriter
from execution.core.broker import BrokerFill, fill_events, fill_id_for
from execution.core.engine import Engine
from execution.core.limits import RiskLimits
from execution.core.positions import Book
from execution.core.sizing import SizingPolicy
from orchestration.dbt_project import run_dbt
from tests.integration.reports.conftest import load
from tests.unit.execution.helpers import ALWAYS_OPEN, ListPublisher, execution_settings
from tickwave.clock import ManualClock
from tickwave.config import Settings
from tickwave.contracts import Bar, Fill, OrderSubmitted, Side, Tick
from tickwave.money import to_decimal
from tickwave.warehouse.tables import BARS_1M

# USD-quoted symbols (their P&L is in the account currency as booked) and USDJPY (converted by the engine).
SYMBOLS = ("EURUSD", "GBPUSD", "AUDUSD", "XAUUSD", "USDJPY")
MIDS = {"EURUSD": 1.1, "GBPUSD": 1.27, "AUDUSD": 0.66, "XAUUSD": 2000.0, "USDJPY": 150.0}
FIRST_DAY = datetime(2026, 10, 5, tzinfo=UTC)
SELECT = "+pnl_daily +compliance_pnl_trips +compliance_positions_close"
ZERO = Decimal(0)

# One fill: signed lots in steps of 0.01 (up to 0.6), a price move in points, a commission in cents.
fills = st.tuples(st.integers(-60, 60).filter(bool), st.integers(-300, 300), st.integers(0, 150))
sequences = st.tuples(st.sampled_from(SYMBOLS), st.lists(fills, min_size=1, max_size=12), st.booleans())
# Always among them: 0.1 + 0.2 - 0.3 (flat exactly), and a flip through zero that then closes.
FIXED = [
    ("EURUSD", [(10, 0, 0), (20, 5, 35), (-30, 9, 35)], True),
    ("XAUUSD", [(-10, 0, 0), (30, -40, 10), (-20, 15, 10)], True),
]


@dataclass
class Expected:
    """What the engine booked, per the marts' grains."""

    positions: dict[tuple[str, date], Decimal]
    unrealized_quote: dict[tuple[str, date], Decimal]
    realized: dict[tuple[str, date], Decimal]  # account currency, net of commissions
    trips: dict[str, tuple[str, date, Decimal, Decimal]]  # symbol, exit day (min: open), gross quote, account
    trip_lots: dict[str, Decimal]  # the lots that opened or added to each trip


def run_engine(examples: list[tuple[str, list[tuple[int, int, int]], bool]]) -> tuple[list[Fill], list[Bar], Expected]:
    """Book each sequence's fills on its own day through the real engine; return its records and figures."""
    limits = RiskLimits.from_settings(execution_settings(), market=ALWAYS_OPEN)
    clock = ManualClock(int(FIRST_DAY.timestamp() * 1000))
    engine = Engine(limits, SizingPolicy.from_settings(execution_settings()), clock)
    records: list[Fill] = []
    bars: list[Bar] = []
    expected = Expected({}, {}, {}, {}, {})
    for number, (symbol, steps, marked) in enumerate(examples):
        day_start = FIRST_DAY + timedelta(days=number)
        clock.set(int(day_start.timestamp() * 1000) + 3_600_000)
        spec = limits.instruments[symbol]
        for rate_symbol, mid in MIDS.items():  # the engine converts at its latest mids
            engine.on_tick(Tick(symbol=rate_symbol, time_ms=clock.now_ms(), seq=number, bid=mid, ask=mid))
        price = MIDS[symbol]
        for index, (steps_lots, move, cents) in enumerate(steps):
            clock.advance(1_000)
            price = round(price + move * spec.point, spec.digits)
            lots = abs(steps_lots) / 100
            side: Side = "buy" if steps_lots > 0 else "sell"
            cid = f"tw-{number:06d}-{index:04d}"
            submitted = OrderSubmitted(
                client_order_id=cid,
                signal_id=f"s-{cid}",
                symbol=symbol,
                model_id="m",
                model_version=1,
                event_at_ms=clock.now_ms(),
                side=side,
                quantity_lots=lots,
                order_type="market",
            )
            engine.apply(submitted)
            answer = fill_events(
                submitted, BrokerFill(fill_id_for(cid, 0), price, lots, clock.now_ms(), "", cents / 100), lots, True
            )
            for event in engine.booked(answer):
                engine.apply(event)
                if isinstance(event, Fill):
                    records.append(event)
                    _expect_fill(expected, event, day_start.date())
        book = engine.books.get(symbol, Book())
        key = (symbol, day_start.date())
        expected.positions[key] = book.lots
        mark = price
        if marked:
            mark = round(price + 7 * spec.point, spec.digits)
            bars.append(_bar(symbol, int((day_start + timedelta(hours=23)).timestamp() * 1000), mark))
        expected.unrealized_quote[key] = book.unrealized(to_decimal(mark)) * to_decimal(spec.contract_size)
    return records, bars, expected


def _expect_fill(expected: Expected, fill: Fill, day: date) -> None:
    assert isinstance(fill.realized_pnl_quote, Decimal) and isinstance(fill.position_after_lots, Decimal)
    key = (fill.symbol, day)
    account = fill.realized_pnl_account
    assert isinstance(account, Decimal)  # every rate is known here
    expected.realized[key] = expected.realized.get(key, ZERO) + account - to_decimal(fill.commission)
    before, after = fill.position_before_lots, fill.position_after_lots
    assert isinstance(before, Decimal)
    flips = fill.opens_round_trip_id not in ("", fill.round_trip_id)
    closes = after == 0 or flips
    trip = str(fill.round_trip_id)
    if before == 0 or ((after > 0) == (before > 0) and abs(after) > abs(before)):  # opens or adds to its trip
        expected.trip_lots[trip] = expected.trip_lots.get(trip, ZERO) + abs(after - before)
    if flips:  # opens the next trip with what is left after closing this one
        expected.trip_lots[str(fill.opens_round_trip_id)] = abs(after)
    symbol, exit_day, gross, gross_account = expected.trips.get(trip, (fill.symbol, date.min, ZERO, ZERO))
    expected.trips[trip] = (
        symbol,
        day if closes else exit_day,
        gross + fill.realized_pnl_quote,
        (gross_account or ZERO) + account,
    )


def _end_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000) + 86_400_000


def _bar(symbol: str, start_ms: int, mid: float) -> Bar:
    prices = {f"{side}_{point}": mid for side in ("bid", "ask", "mid") for point in ("open", "high", "low", "close")}
    return Bar(
        symbol=symbol,
        timeframe="1m",
        start_ms=start_ms,
        end_ms=start_ms + 60_000,
        tick_count=1,
        volume=0.0,
        spread_mean=0.0,
        spread_max=0.0,
        **prices,
    )


def dbt_build(settings: Settings, database: str) -> None:
    done = run_dbt(
        settings, ["build", "--select", *SELECT.split(), "--indirect-selection", "cautious"], database, timeout_s=600
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def rows_of_trips(client: Client) -> Sequence[Sequence[Any]]:
    """Each closed round trip: id, symbol, exit day, gross P&L (quote, account) and lots, as exact text."""
    return client.query(
        "SELECT round_trip_id, symbol, exit_date, toString(gross_pnl_quote), toString(gross_pnl_account), "
        "toString(lots) FROM fct_round_trips"
    ).result_rows


@pytest.fixture
def database(warehouse_settings: Settings) -> Iterator[str]:
    name = f"tie_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=name)
    try:
        yield name
    finally:
        client = connect(warehouse_settings, database="default")
        try:
            client.command(f"DROP DATABASE IF EXISTS {name} SYNC")
        finally:
            client.close()


@settings(
    max_examples=1, deadline=None, phases=[Phase.generate], derandomize=True, suppress_health_check=list(HealthCheck)
)
@given(st.lists(sequences, min_size=30, max_size=30))
def test_marts_when_any_fills_with_reversals_then_positions_trips_and_pnl_equal_the_engines_booking(
    warehouse_settings: Settings, database: str, generated: list[tuple[str, list[tuple[int, int, int]], bool]]
) -> None:
    records, bars, expected = run_engine([*FIXED, *generated])
    publisher = ListPublisher()
    publisher.messages.extend(records)
    load(warehouse_settings, database, publisher, [])
    client = connect(warehouse_settings, database=database)
    try:
        with BatchWriter(client, BARS_1M) as writer:
            writer.write_messages(bars)
        dbt_build(warehouse_settings, database)
        positions = {
            (s, d): Decimal(p)
            for s, d, p in client.query("SELECT symbol, day, toString(position_lots) FROM positions_daily").result_rows
        }
        entry_prices = {
            (s, d): Decimal(repr(p))
            for s, d, p in client.query("SELECT symbol, day, entry_price FROM positions_daily").result_rows
        }
        unrealized = {
            (s, d): (Decimal(q), Decimal(a))
            for s, d, q, a in client.query(
                "SELECT symbol, day, toString(unrealized_pnl_quote), toString(unrealized_pnl_account) "
                "FROM positions_daily"
            ).result_rows
        }
        realized = {
            (s, d): Decimal(r)
            for s, d, r in client.query("SELECT symbol, day, toString(realized_pnl_account) FROM pnl_daily").result_rows
        }
        trips = {t: (s, d, Decimal(q), Decimal(a)) for t, s, d, q, a, _ in rows_of_trips(client)}
        trip_lots = {t: Decimal(lots) for t, *_, lots in rows_of_trips(client)}
        closes = {
            (s, d): Decimal(p)
            for s, d, p in client.query(
                "SELECT symbol, report_date, toString(position_lots) FROM compliance_positions_close"
            ).result_rows
        }
        report_trips = {trip for (trip,) in client.query("SELECT round_trip_id FROM compliance_pnl_trips").result_rows}
    finally:
        client.close()

    # Every (symbol, day) the engine traded: the position it booked (0 when flat), exactly; the view too.
    assert {key: positions[key] for key in expected.positions} == expected.positions
    assert {key: closes[key] for key in expected.positions} == expected.positions
    assert {key: unrealized[key][0] for key in expected.unrealized_quote} == expected.unrealized_quote
    # The open lots' average entry at the symbol's digits: within half a point of the engine's average.
    instruments = RiskLimits.from_settings(execution_settings()).instruments
    for (symbol, day), position in expected.positions.items():
        spec, shown = instruments[symbol], entry_prices[(symbol, day)]
        assert -shown.as_tuple().exponent <= spec.digits  # type: ignore[operator]
        if position:
            average = [f for f in records if f.symbol == symbol and f.filled_at_ms < _end_ms(day)][-1]
            exact = Decimal(str(average.entry_value_after)) / position
            assert abs(shown - exact) <= to_decimal(spec.point) / 2, (symbol, day, shown, exact)
    usd = {key for key in expected.unrealized_quote if key[0] != "USDJPY"}
    assert {key: unrealized[key][1] for key in usd} == {key: expected.unrealized_quote[key] for key in usd}
    assert {key: realized[key] for key in expected.realized} == expected.realized
    closed = {trip: figures for trip, figures in expected.trips.items() if figures[1] != date.min}
    assert len(closed) >= 10 and len(expected.positions) == len(FIXED) + 30
    assert expected.positions[("EURUSD", FIRST_DAY.date())] == positions[("EURUSD", FIRST_DAY.date())] == 0
    assert trips == closed
    assert trip_lots == {trip: expected.trip_lots[trip] for trip in closed}
    assert report_trips == set(closed)
    assert sum(1 for fill in records if fill.opens_round_trip_id not in ("", fill.round_trip_id)) >= 1  # a flip
