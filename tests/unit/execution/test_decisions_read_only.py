"""The single-mutator rule: no decision changes the engine's state, whatever the state is.

The state (:class:`~execution.core.engine_state.EngineState`) changes only through its own
writers. Every decision (signals, tick breakers, follow-ups, each operator command,
protective stops) and every valuation (the day's P&L, fill bookings, status) is probed on
states reached by any sequence of signals, prices, fills and commands, and the state's
every attribute, recursively, must be what it was. Caches and queries (dataclass fields
declared ``compare=False``) are compared by identity, so replacing one (storing a valued
P&L in the view) fails too.
"""

from __future__ import annotations

import inspect
import tempfile
from collections import deque
from dataclasses import fields, is_dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from execution.core.engine import Engine
from execution.core.engine_state import EngineState
from execution.core.limits import RiskLimits
from execution.core.risk import FixedDayPnl
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, execution_settings, make_service, signal, tick
from tickwave.clock import ManualClock
from tickwave.config import MarketSettings
from tickwave.contracts import ControlCommand, Fill, OrderFilled, OrderRejected

SYMBOLS = ["EURUSD", "GBPUSD"]
STALE_MS = 120_000  # later than max_tick_age_ms: no price


def frozen(value: Any) -> Any:
    """Return a comparable copy of ``value`` and everything it holds (objects by their attributes).

    A dataclass field declared ``compare=False`` is a cache or a query (the view's
    ``day_pnl`` and ``leg_values``, the calendar's last day): compared by identity, so
    filling it is allowed and replacing it is a change.
    """
    if value is None or isinstance(value, str | int | float | Decimal | msgspec.Struct):
        return value  # immutable (contract messages and orders are frozen structs)
    if isinstance(value, dict):
        return tuple((key, frozen(item)) for key, item in value.items())
    if isinstance(value, list | tuple | deque):
        return tuple(frozen(item) for item in value)
    if isinstance(value, set | frozenset):
        return frozenset(frozen(item) for item in value)
    caches = {f.name for f in fields(value) if not f.compare} if is_dataclass(value) else set()
    attributes = _attributes(value)
    if attributes is None:
        return value  # no attributes of its own (zone info, times): compared as it is
    return type(value).__name__, tuple(
        (name, id(item) if name in caches else frozen(item)) for name, item in attributes.items()
    )


def _attributes(value: Any) -> dict[str, Any] | None:
    """Return an object's attributes: its ``__dict__``, or a Rust core class's getters (it has no ``__dict__``)."""
    if type(value).__module__ == "tickwave_core":
        getters = [name for name, member in vars(type(value)).items() if inspect.isgetsetdescriptor(member)]
        return {name: getattr(value, name) for name in getters}
    try:
        return vars(value)
    except TypeError:
        return None


def snapshot(state: EngineState) -> Any:
    return frozen(state)


def _command(number: int, command: str, **fields: Any) -> ControlCommand:
    return ControlCommand(
        command_id=f"probe-{number}-{command}",
        command=command,
        issued_by="test",  # type: ignore[arg-type]
        issued_at_ms=WEDNESDAY_NOON_MS,
        **fields,
    )


def _probe(engine: Engine, clock: ManualClock, number: int, index: int, mids: dict[str, float]) -> None:
    """Run every read-only decision and valuation on the engine's current state, now and once prices are stale.

    Stale prices make the gate deny the closes of a flatten and a protective stop too.
    """
    start_ms = clock.now_ms()
    for now_ms in (start_ms, start_ms + STALE_MS):
        clock.set(now_ms)
        _probe_at(engine, number, index, mids, now_ms)
    clock.set(start_ms)


def _probe_at(engine: Engine, number: int, index: int, mids: dict[str, float], now_ms: int) -> None:
    for symbol in SYMBOLS:
        for direction in ("long", "short", "flat"):
            engine.on_signal(signal(index, now_ms, direction, 1.0, symbol))
        moved = tick(now_ms, round(mids[symbol] * 0.97, 5), symbol)  # far enough to cross a stop
        engine.decisions.on_tick(moved)
        engine.stops.on_tick(moved)
    for order in list(engine.orders.values())[-3:]:
        common = {
            "client_order_id": order.client_order_id,
            "signal_id": order.signal_id,
            "symbol": order.symbol,
            "model_id": order.model_id,
            "model_version": order.model_version,
            "event_at_ms": now_ms,
        }
        engine.decisions.follow_ups(OrderRejected(**common, reason="probe"))
        lots = order.quantity_lots
        filled = OrderFilled(
            **common,
            fill_id=f"probe-{number}",
            fill_price=mids[order.symbol],
            fill_lots=lots,
            cumulative_lots=lots,
            is_final=True,
        )
        engine.decisions.follow_ups(filled)
        record = Fill(
            fill_id=filled.fill_id,
            client_order_id=order.client_order_id,
            signal_id=order.signal_id,
            symbol=order.symbol,
            side=order.side,
            price=filled.fill_price,
            quantity_lots=filled.fill_lots,
            commission=0.0,
            filled_at_ms=now_ms,
            model_id=order.model_id,
            model_version=order.model_version,
        )
        engine.booked([filled, record])
    commands = [
        _command(number, "halt"),
        _command(number, "halt", symbol="EURUSD"),
        _command(number, "reduce"),
        _command(number, "resume"),
        _command(number, "flatten"),
        _command(number, "flatten", symbol="GBPUSD"),
        _command(number, "status"),
        _command(number, "set_limit", params={"max_position_lots": "0.5"}),
        _command(number, "set_limit", params={"max_position_lots": "nan"}),
    ]
    for command in commands:
        engine.commands.on_control(command)
    engine.daily_pnl(now_ms)
    engine.status()
    engine.working_orders()
    engine.orders_in_window(now_ms - 60_000)


steps = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.sampled_from(SYMBOLS), st.floats(-0.01, 0.01)),
        st.tuples(
            st.just("signal"), st.integers(0, 9), st.sampled_from(["long", "short", "flat"]), st.sampled_from(SYMBOLS)
        ),
        st.tuples(st.just("advance"), st.integers(1, 3_000)),
        st.tuples(st.just("control"), st.sampled_from(["halt", "reduce", "resume", "flatten"])),
    ),
    min_size=4,
    max_size=25,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_decisions_when_probed_on_any_state_then_the_state_is_unchanged(sequence: list[tuple[Any, ...]]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        clock = ManualClock(WEDNESDAY_NOON_MS)
        options = {
            "market_hours": "always",
            "max_position_lots": 1.0,
            "max_order_lots": 0.5,
            "max_orders_per_second": 1_000,
            "signal_ttl_ms": 60_000,
            "stop_loss_pips": 20.0,
            "take_profit_pips": 20.0,
            "daily_loss_limit": 500.0,
        }
        service = make_service(Path(directory), clock, paper_broker={"latency_ms": 400}, **options)
        engine = service.engine
        mids = dict.fromkeys(SYMBOLS, 1.2)
        for symbol in SYMBOLS:
            service.handle_tick(tick(clock.now_ms(), mids[symbol], symbol))
        for number, step in enumerate(sequence):
            if step[0] == "tick":
                mids[step[1]] = round(mids[step[1]] * (1 + step[2]), 5)
                service.handle_tick(tick(clock.now_ms(), mids[step[1]], step[1]))
            elif step[0] == "signal":
                service.handle_signal(signal(step[1], clock.now_ms(), step[2], 1.0, step[3]))
            elif step[0] == "advance":
                clock.advance(step[1])
                service.poll_broker()
            else:
                service.handle_control(_command(number, step[1]))
            before = snapshot(engine.state)

            _probe(engine, clock, number, number % 12, mids)

            assert snapshot(engine.state) == before, f"a decision changed the engine's state after step {step}"
        service.close()


def test_snapshot_when_the_state_changes_then_it_differs() -> None:
    # The snapshot sees a change deep inside the state (a quote, a price window) and a replaced query.
    state = EngineState(RiskLimits.from_settings(execution_settings(), market=MarketSettings(hours="always")))
    before = snapshot(state)
    state.observe_tick(tick(WEDNESDAY_NOON_MS, 1.1))
    assert snapshot(state) != before
    before = snapshot(state)
    state.view.day_pnl = FixedDayPnl(Decimal(0))
    assert snapshot(state) != before
