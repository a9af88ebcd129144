"""Invariants of the decision path under any sequence of signals, prices, commands and restarts.

Each example drives the real service (engine + journal + paper broker) with a test clock:
- no position ever exceeds its limit (at the engine and at the broker), also while orders
  are still working (paper latency), since the limits count working orders;
- a halted engine sends nothing to the broker;
- each signal yields at most one order, even when redelivered and across restarts;
- replaying the journal rebuilds the same positions and orders;
- each journaled fill record carries the booking the replayed engine books for it.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from execution.core.engine import Engine
from execution.journal import Journal
from execution.service import ExecutionService
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import ControlCommand, Fill, OrderSubmitted

MAX_POSITION = Decimal("1.0")
SYMBOLS = ["EURUSD", "GBPUSD"]

STEP_KINDS = {
    "tick": st.tuples(st.just("tick"), st.sampled_from(SYMBOLS), st.floats(-0.01, 0.01)),
    "jump": st.tuples(st.just("tick"), st.sampled_from(SYMBOLS), st.floats(-0.04, 0.04)),
    "signal": st.tuples(
        st.just("signal"),
        st.integers(0, 15),
        st.sampled_from(["long", "short", "flat"]),
        st.floats(0.05, 1),
        st.sampled_from(SYMBOLS),
    ),
    "burst": st.tuples(
        st.just("burst"),
        st.lists(
            st.tuples(
                st.integers(0, 15), st.sampled_from(["long", "short"]), st.floats(0.05, 1), st.sampled_from(SYMBOLS)
            ),
            min_size=2,
            max_size=6,
        ),
    ),
    "advance": st.tuples(st.just("advance"), st.integers(1, 3_000)),
    "control": st.tuples(st.just("control"), st.sampled_from(["halt", "reduce", "resume"])),
    "restart": st.tuples(st.just("restart")),
}
# Weighted: mostly signals (alone or in bursts) and ticks, sometimes a command, a price jump or a restart.
WEIGHTS = ["signal"] * 6 + ["burst"] * 2 + ["tick"] * 4 + ["advance"] * 2 + ["jump", "control", "restart"]
actions = st.sampled_from(WEIGHTS).flatmap(lambda kind: STEP_KINDS[kind])


def _ledger_submissions(engine_dir: Path) -> Counter[str]:
    """Every submit call the paper venue received (it records repeats too), per signal."""
    path = engine_dir / "paper_ledger.jsonl"
    with Journal(path, fsync=False) as ledger:
        return Counter(event.signal_id for event in ledger.events() if isinstance(event, OrderSubmitted))


def _journal_submissions(engine_dir: Path) -> Counter[str]:
    """Every OrderSubmitted the engine journaled, per client order id."""
    path = engine_dir / "journal.jsonl"
    with Journal(path, fsync=False) as journal:
        return Counter(event.client_order_id for event in journal.events() if isinstance(event, OrderSubmitted))


def _assert_window_is_the_scan(engine: Engine, now_ms: int) -> None:
    # The reconciliation's indexed window equals the scan of every order it replaced.
    for since_ms in (now_ms - 1_000, now_ms, now_ms + 1):
        start_ms = min([since_ms, *(order.created_at_ms for order in engine.orders.values() if not order.is_terminal)])
        scanned = {cid for cid, o in engine.orders.items() if not o.is_terminal or o.created_at_ms >= start_ms}
        window_start, window = engine.orders_in_window(since_ms)
        assert (window_start, set(window)) == (start_ms, scanned)
        assert [order.created_at_ms for order in window.values()] == sorted(o.created_at_ms for o in window.values())


def _assert_fill_records_carry_the_replayed_booking(service: ExecutionService, engine_dir: Path) -> None:
    # Each journaled Fill record carries what the engine booked for its execution before the journal
    # write; the engine now (rebuilt by replay after any restart) booked exactly the same.
    path = engine_dir / "journal.jsonl"
    with Journal(path, fsync=False) as journal:
        records = [event for event in journal.events() if isinstance(event, Fill)]
    positions: dict[str, Decimal] = {}
    for record in records:
        booking = service.engine.bookings[record.fill_id]
        assert record.position_before_lots == positions.get(record.symbol, Decimal(0)) == booking.position_before
        assert (record.position_after_lots, record.entry_value_after) == (
            booking.position_after,
            booking.entry_value_after,
        )
        assert record.realized_pnl_quote == booking.realized * 100_000
        assert (record.round_trip_id, record.opens_round_trip_id) == (
            booking.round_trip_id,
            booking.opens_round_trip_id,
        )
        positions[record.symbol] = booking.position_after


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(actions, min_size=8, max_size=40), st.sampled_from([0, 400]))
def test_engine_when_any_sequence_then_limits_hold_and_one_order_per_signal(
    steps: list[tuple[object, ...]], latency_ms: int
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        state = Path(directory)
        clock = ManualClock(WEDNESDAY_NOON_MS)
        options = {
            "market_hours": "always",
            "max_position_lots": 1.0,
            "max_order_lots": 0.5,
            "max_orders_per_second": 1_000,
            "flash_crash_pct": 2.5,
            "signal_ttl_ms": 60_000,
            "paper_broker": {"latency_ms": latency_ms},
        }
        service = make_service(state, clock, **options)
        engine_dir = state / "execution" / "execution-1"
        mids = dict.fromkeys(SYMBOLS, 1.2)
        for symbol in SYMBOLS:
            service.handle_tick(tick(clock.now_ms(), mids[symbol], symbol))
        for number, step in enumerate(steps):
            before = sum(_ledger_submissions(engine_dir).values())
            halted = service.engine.trading_state == "HALTED"
            kind = step[0]
            if kind == "tick":
                _, symbol, change = step
                mids[symbol] = round(mids[symbol] * (1 + change), 5)  # type: ignore[index,operator]
                service.handle_tick(tick(clock.now_ms(), mids[symbol], symbol))  # type: ignore[index,arg-type]
            elif kind == "signal":
                _, index, direction, strength, symbol = step
                service.handle_signal(signal(index, clock.now_ms(), direction, strength, symbol))  # type: ignore[arg-type]
            elif kind == "burst":  # signals that arrived together: decided as a group, one fsync
                burst = [signal(i, clock.now_ms(), d, f, sym) for i, d, f, sym in step[1]]  # type: ignore[attr-defined]
                service.handle_signals(burst)
            elif kind == "advance":
                clock.advance(step[1])  # type: ignore[arg-type]
                service.poll_broker()  # working orders (paper latency) fill now
            elif kind == "control":
                command = ControlCommand(
                    command_id=f"c{number}",
                    command=step[1],
                    issued_by="test",  # type: ignore[arg-type]
                    issued_at_ms=clock.now_ms(),
                )
                service.handle_control(command)
            else:
                positions = dict(service.engine.view.positions)
                service.close()
                service = make_service(state, clock, **options)
                assert {s: p for s, p in service.engine.view.positions.items() if p} == {
                    s: p for s, p in positions.items() if p
                }
            submissions = _ledger_submissions(engine_dir)
            assert all(count == 1 for count in submissions.values()), "a signal reached the broker twice"
            journaled = _journal_submissions(engine_dir)
            assert all(count == 1 for count in journaled.values()), "the journal recorded two orders for one signal"
            if halted and kind in ("signal", "burst"):
                assert sum(submissions.values()) == before, "a halted engine sent an order"
            for symbol in SYMBOLS:
                assert abs(service.engine.view.position(symbol)) <= MAX_POSITION
                assert abs(service.broker.positions().get(symbol, Decimal(0))) <= MAX_POSITION
            assert {s: p for s, p in service.engine.view.positions.items() if p} == dict(service.broker.positions())
            assert not service.engine.defects
            _assert_window_is_the_scan(service.engine, clock.now_ms())
        _assert_fill_records_carry_the_replayed_booking(service, engine_dir)
        event(f"orders placed: {min(sum(_ledger_submissions(engine_dir).values()), 3)}+")
        event(f"ended {service.engine.trading_state}")
        service.close()
