"""What the engine books for each fill: position before and after, round trip, realised P&L (one rule).

The book's figures are checked against rules derived independently of first-in first-out
matching: the position is the running sum of the signed lots; a round trip runs flat to flat
and a flip closes one and opens the next at the flip's price; over a whole trip the realised
P&L is the trip's cash flow (for a flip, its closing lots only); at any moment realised so far
in the trip plus open P&L at a mark equals the trip's cash flow plus the position at that mark.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.backtest import replay_settings
from execution.backtest import replay_session
from execution.core.broker import BrokerFill, fill_events
from execution.core.engine import Engine
from execution.core.limits import RiskLimits
from execution.core.positions import Book
from execution.core.sizing import SizingPolicy
from tests.unit.execution.helpers import (
    ALWAYS_OPEN,
    WEDNESDAY_NOON_MS,
    ListPublisher,
    execution_settings,
    holdout_timeline,
    make_service,
    signal,
    tick,
)
from tickwave.clock import ManualClock
from tickwave.config import SymbolSpec
from tickwave.contracts import Fill, Message, OrderFilled, OrderSubmitted, decode, encode
from tickwave.instruments import instrument_for
from tickwave.money import to_decimal
from tickwave.warehouse.tables import FILLS, row_for, to_arrow

STEP = Decimal("0.01")
# Lots in steps of 0.01 (0.1, 0.2 and 0.3 among them), either side; prices with up to 5 decimals.
signed_lots = st.integers(-60, 60).filter(bool).map(lambda steps: steps * STEP)
prices = st.integers(90_000, 130_000).map(lambda points: Decimal(points).scaleb(-5))


def _split(before: Decimal, signed: Decimal) -> tuple[Decimal, Decimal]:
    """The lots of a fill that close the position held before it, and the lots that open one (signed)."""
    after = before + signed
    if before == 0 or (before > 0) == (signed > 0):
        return Decimal(0), signed
    if after == 0 or (after > 0) == (before > 0):
        return signed, Decimal(0)
    return -before, after  # a flip: it closes all it held and opens the rest the other way


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(signed_lots, prices), min_size=1, max_size=40), prices)
def test_book_when_any_fills_then_positions_trips_and_realized_follow_the_cash_flows(
    fills: list[tuple[Decimal, Decimal]], mark: Decimal
) -> None:
    book = Book()
    position = Decimal(0)
    trip, trip_cash, trip_realized = "", Decimal(0), Decimal(0)
    for number, (lots, price) in enumerate(fills):
        fill_id = f"f{number}"
        booked = book.book(lots, price, fill_id)
        closing, opening = _split(position, lots)

        assert (booked.position_before, booked.position_after) == (position, position + lots)
        assert booked.position_after == book.lots and booked.position_after % STEP == 0
        assert booked.round_trip_id == (trip or fill_id)
        trip_cash -= closing * price
        trip_realized += booked.realized
        if position + closing == 0 and closing:  # the trip closed: its realised P&L is its cash flow
            assert trip_realized == trip_cash
            trip, trip_cash, trip_realized = "", Decimal(0), Decimal(0)
        if opening:
            expected_open = fill_id if (position == 0 or closing) else ""
            assert booked.opens_round_trip_id == expected_open
            trip = trip or fill_id
            trip_cash -= opening * price
        else:
            assert booked.opens_round_trip_id == ""
        position += lots
        # Realised so far in the trip + open P&L at any mark = the trip's cash flow + the position at the mark.
        assert trip_realized + (mark * position - booked.entry_value_after) == trip_cash + mark * position
        assert book.unrealized(mark) == mark * position - booked.entry_value_after


def test_book_when_0_1_plus_0_2_minus_0_3_then_flat_and_the_trip_closes() -> None:
    book = Book()
    first = book.book(Decimal("0.1"), Decimal("1.1"), "a")
    book.book(Decimal("0.2"), Decimal("1.2"), "b")
    last = book.book(Decimal("-0.3"), Decimal("1.3"), "c")
    after = book.book(Decimal("0.1"), Decimal("1.0"), "d")

    assert first.round_trip_id == first.opens_round_trip_id == "a"
    assert (last.position_after, last.round_trip_id, last.opens_round_trip_id) == (Decimal(0), "a", "")
    assert last.realized == Decimal("0.1") * Decimal("0.2") + Decimal("0.2") * Decimal("0.1")
    assert (after.round_trip_id, after.opens_round_trip_id) == ("d", "d")


def test_book_when_a_fill_flips_through_zero_then_it_closes_its_trip_and_opens_the_next_at_its_price() -> None:
    book = Book()
    book.book(Decimal("0.3"), Decimal("1.1"), "a")
    flip = book.book(Decimal("-0.5"), Decimal("1.2"), "b")
    closing = book.book(Decimal("0.2"), Decimal("1.15"), "c")

    assert (flip.position_before, flip.position_after) == (Decimal("0.3"), Decimal("-0.2"))
    assert (flip.round_trip_id, flip.opens_round_trip_id) == ("a", "b")
    assert flip.realized == Decimal("0.3") * Decimal("0.1")  # only the closing lots: the new trip has none yet
    assert flip.entry_value_after == Decimal("-0.2") * Decimal("1.2")
    assert (closing.round_trip_id, closing.position_after) == ("b", Decimal(0))
    assert closing.realized == Decimal("0.2") * Decimal("0.05")


def test_fill_when_written_before_the_booking_existed_then_it_decodes_and_encodes_to_the_same_bytes() -> None:
    old = (
        b'{"type":"fill.v1","fill_id":"f1","client_order_id":"c","signal_id":"s","symbol":"EURUSD",'
        b'"side":"buy","price":1.1,"quantity_lots":0.1,"commission":0.0,"filled_at_ms":1,"model_id":"m",'
        b'"model_version":1,"broker_deal_id":""}'
    )
    fill = decode(old, Fill)

    assert not fill.is_booked and fill.position_after_lots is msgspec.UNSET
    assert encode(fill) == old


def test_service_when_signals_reverse_then_every_fill_record_carries_the_engines_booking(tmp_path: Path) -> None:
    clock = ManualClock(WEDNESDAY_NOON_MS)
    publisher = ListPublisher()
    service = make_service(tmp_path, clock, publisher, market_hours="always")
    try:
        directions = ["long", "short", "short", "flat", "short", "long", "flat", "long"]
        for index, direction in enumerate(directions):
            clock.advance(100)
            service.handle_tick(tick(clock.now_ms(), 1.1 + index * 0.0003, seq=index))
            service.handle_signal(signal(index, clock.now_ms(), direction, 0.3 + index % 3 * 0.2))
        engine = service.engine
        records = publisher.of_type(Fill)
        executions = publisher.of_type(OrderFilled)
    finally:
        service.close()

    assert len(records) == len(executions) >= 6 and all(record.is_booked for record in records)
    position, trips = Decimal(0), set()
    for record in records:
        booking = engine.bookings[record.fill_id]
        assert (record.position_before_lots, record.position_after_lots) == (position, booking.position_after)
        assert record.realized_pnl_quote == booking.realized * 100_000 == record.realized_pnl_account
        assert (record.round_trip_id, record.opens_round_trip_id) == (
            booking.round_trip_id,
            booking.opens_round_trip_id,
        )
        position = booking.position_after
        trips.add(record.round_trip_id)
    assert position == engine.books["EURUSD"].lots
    assert any(r.opens_round_trip_id and r.opens_round_trip_id != r.round_trip_id for r in records)  # a flip
    assert len(trips) >= 2


def test_fill_record_when_a_price_has_many_decimals_then_its_amounts_fit_the_warehouse_columns() -> None:
    engine = Engine(
        RiskLimits.from_settings(execution_settings(), market=ALWAYS_OPEN),
        SizingPolicy.from_settings(execution_settings()),
        ManualClock(WEDNESDAY_NOON_MS),
    )
    engine.on_tick(tick(WEDNESDAY_NOON_MS, 1.1))
    rows = []
    for number, (side, price) in enumerate((("buy", 0.012345678901234567), ("sell", 0.013345678901234568))):
        submitted = OrderSubmitted(
            client_order_id=f"c{number}",
            signal_id=f"s{number}",
            symbol="EURUSD",
            model_id="m",
            model_version=1,
            event_at_ms=WEDNESDAY_NOON_MS,
            side=side,  # type: ignore[arg-type]
            quantity_lots=0.07,
            order_type="market",
        )
        engine.apply(submitted)
        group = engine.booked(
            fill_events(submitted, BrokerFill(f"f{number}", price, 0.07, WEDNESDAY_NOON_MS), 0.07, True)
        )
        for event in group:
            engine.apply(event)
        rows += [row_for(event) for event in group if isinstance(event, Fill)]

    table = to_arrow(FILLS, {name: [row[name] for row in rows] for name in FILLS.column_names})  # no data lost
    opened, closed = table.to_pylist()
    # 0.07 x 0.012345678901234567 has 19 decimals: rounded to the column's 18
    assert opened["entry_value_after"] == Decimal("0.000864197523086420")
    assert closed["realized_pnl_quote"] == Decimal("7.000000000000007") and closed["position_after_lots"] == 0


def test_engine_when_another_fill_is_booked_before_one_booked_ahead_then_that_one_is_booked_afresh() -> None:
    # Arrange: two buys of EURUSD; the second's group is booked (its Fill record) before the first's is applied
    engine = Engine(
        RiskLimits.from_settings(execution_settings(), market=ALWAYS_OPEN),
        SizingPolicy.from_settings(execution_settings()),
        ManualClock(WEDNESDAY_NOON_MS),
    )
    engine.on_tick(tick(WEDNESDAY_NOON_MS, 1.1))
    orders = [
        OrderSubmitted(
            client_order_id=f"c{number}",
            signal_id=f"s{number}",
            symbol="EURUSD",
            model_id="m",
            model_version=1,
            event_at_ms=WEDNESDAY_NOON_MS,
            side="buy",
            quantity_lots=lots,
            order_type="market",
        )
        for number, lots in enumerate((0.1, 0.2))
    ]
    for order in orders:
        engine.apply(order)
    later = engine.booked(fill_events(orders[1], BrokerFill("f1", 1.2, 0.2, WEDNESDAY_NOON_MS), 0.2, True))

    # Act: the first fill lands first, then the group booked ahead
    for event in engine.booked(fill_events(orders[0], BrokerFill("f0", 1.1, 0.1, WEDNESDAY_NOON_MS), 0.1, True)):
        engine.apply(event)
    for event in later:
        engine.apply(event)

    # Assert: the state holds both fills (its record, booked ahead on a flat book, says what it saw then)
    assert engine.books["EURUSD"].lots == Decimal("0.3")
    assert engine.bookings["f1"].position_before == Decimal("0.1")
    assert engine.books["EURUSD"].entries == deque([(Decimal("0.1"), Decimal("1.1")), (Decimal("0.2"), Decimal("1.2"))])


def test_book_when_amounts_have_more_digits_than_the_default_context_then_still_exact() -> None:
    # Python's default decimal context keeps 28 digits and rounds past them without a word;
    # the book's products and sums are exact whatever the digits (checked with fractions).
    entry, exit_, mark = Decimal("1.0000000000000000000000001"), Decimal("2.0000000000000000000000003"), Decimal("3.1")
    lots = Decimal("-1.234567")
    book = Book()
    book.book(-lots, entry, "a")  # long 1.234567 at entry
    opened = book.unrealized(exit_)
    closed = book.book(lots, exit_, "b")

    expected = Fraction(-lots) * (Fraction(exit_) - Fraction(entry))
    assert Fraction(opened) == expected
    assert Fraction(closed.realized) == expected
    assert len(closed.realized.as_tuple().digits) > 28
    book.book(lots, entry, "c")  # short 1.234567 at entry
    assert Fraction(book.unrealized(mark)) == Fraction(lots) * (Fraction(mark) - Fraction(entry))


def test_book_when_lots_and_prices_span_a_symbols_price_bounds_then_exact_past_38_digits() -> None:
    # A symbol's default price bounds run from its tick size to 2**53 ticks (here 1e-5 to ~9.0e10):
    # 17-digit lots at 17-digit prices at both ends put entries 16 orders of magnitude apart in one
    # book. Its entry value then needs 51 digits: exact, as fractions say.
    spec = instrument_for("EURUSD", SymbolSpec(digits=5, tick_size=1e-5))
    low, high = spec.bounds.price_min * 1.2345678901234567, spec.bounds.price_max * 0.9999999999999999
    fills = [(0.30000000000000004, low), (49.99999999999999, high), (-0.30000000000000004, high / 3)]
    book = Book()
    cash = realized = Fraction(0)
    entry_values = []
    for index, (lots, price) in enumerate(fills):
        booking = book.book(to_decimal(lots), to_decimal(price), f"f{index}")
        cash -= Fraction(to_decimal(lots)) * Fraction(to_decimal(price))
        realized += Fraction(booking.realized)
        entry_values.append(booking.entry_value_after)

    both_open = Fraction(to_decimal(0.30000000000000004)) * Fraction(to_decimal(low)) + Fraction(
        to_decimal(49.99999999999999)
    ) * Fraction(to_decimal(high))
    assert Fraction(entry_values[1]) == both_open
    assert len(entry_values[1].as_tuple().digits) > 38
    # Cash flows: what the trades paid plus what the position holds at its entry is the P&L realised.
    assert realized == cash + Fraction(entry_values[2])
    assert realized != 0


def test_fill_events_when_built_then_the_event_and_the_record_carry_the_execution_and_the_order_as_given() -> None:
    # Every figure distinct, so a field taken from the wrong source shows.
    order = OrderSubmitted(
        client_order_id="tw-7",
        signal_id="s7",
        symbol="USDJPY",
        model_id="m7",
        model_version=3,
        event_at_ms=WEDNESDAY_NOON_MS,
        side="sell",
        quantity_lots=0.5,
        order_type="market",
    )
    execution = BrokerFill("f7", 149.987, 0.2, WEDNESDAY_NOON_MS + 5, "deal-7", 1.25)
    filled, record = fill_events(order, execution, 0.3, False)

    assert filled == OrderFilled(
        client_order_id="tw-7",
        signal_id="s7",
        symbol="USDJPY",
        model_id="m7",
        model_version=3,
        event_at_ms=WEDNESDAY_NOON_MS + 5,
        fill_id="f7",
        fill_price=149.987,
        fill_lots=0.2,
        cumulative_lots=0.3,
        is_final=False,
    )
    assert record == Fill(
        fill_id="f7",
        client_order_id="tw-7",
        signal_id="s7",
        symbol="USDJPY",
        side="sell",
        price=149.987,
        quantity_lots=0.2,
        commission=1.25,
        filled_at_ms=WEDNESDAY_NOON_MS + 5,
        model_id="m7",
        model_version=3,
        broker_deal_id="deal-7",
    )


def test_fast_replay_when_fills_are_booked_then_the_core_books_them_without_the_python_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replay loop books each fill group in the core: the Python engine's ``booked`` never sees a fill."""
    ticks, signals = holdout_timeline(1_500, "booking")
    calls: list[int] = []
    python_booked = Engine.booked

    def counted(engine: Engine, events: Sequence[Message]) -> list[Message]:
        calls.extend(1 for event in events if isinstance(event, Fill))
        return python_booked(engine, events)

    monkeypatch.setattr(Engine, "booked", counted)

    result = replay_session(replay_settings(tmp_path), ticks, signals, fast=True)

    records = [event for event in result.events if isinstance(event, Fill)]
    assert len(records) > 50  # the holdout trades
    assert all(record.realized_pnl_quote is not None and record.round_trip_id for record in records)
    assert calls == []
