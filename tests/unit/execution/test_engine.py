"""The engine's breakers and commands, driven by events and a test clock."""

from __future__ import annotations

import json

from execution.clock import ManualClock
from execution.engine import Engine
from execution.risk import RiskLimits
from execution.sizing import SizingPolicy
from tests.unit.execution.helpers import WEDNESDAY_NOON_MS, execution_settings, signal, tick
from tickwave.contracts import ControlCommand, OrderDenied, OrderRejected, RiskEvent


def _engine(**overrides: object) -> tuple[Engine, ManualClock]:
    settings = execution_settings(market_hours="always", **overrides)
    clock = ManualClock(WEDNESDAY_NOON_MS)
    engine = Engine(RiskLimits.from_settings(settings), SizingPolicy.from_settings(settings), clock)
    engine.on_tick(tick(clock.now_ms(), 1.1))
    return engine, clock


def _command(command: str, number: int = 0, **fields: object) -> ControlCommand:
    return ControlCommand(command_id=f"c{number}", command=command, issued_by="t", issued_at_ms=WEDNESDAY_NOON_MS,  # type: ignore[arg-type]
                          **fields)  # type: ignore[arg-type]  # fmt: skip


def _send(engine: Engine, index: int) -> str:
    """Decide and record a signal's order as submitted; return its client order id."""
    intent = engine.on_signal(signal(index, engine.clock.now_ms(), "long" if index % 2 else "short", 0.5)).intent
    assert intent is not None
    engine.apply(engine.submission(intent))
    return intent.client_order_id


def test_rejects_when_limit_reached_then_engine_halts() -> None:
    engine, clock = _engine(max_consecutive_rejects=3)
    follow_ups: list[RiskEvent] = []
    for index in range(3):
        order = engine.orders[_send(engine, index)]
        reject = OrderRejected(
            client_order_id=order.client_order_id, signal_id=order.signal_id, symbol="EURUSD",
            model_id="m1", model_version=1, event_at_ms=clock.now_ms(), reason="no money",
        )  # fmt: skip
        follow_ups = engine.apply(reject)
        for event in follow_ups:
            engine.apply(event)
    assert [event.trading_state for event in follow_ups] == ["HALTED"]
    assert engine.trading_state == "HALTED"


def test_flash_crash_when_tick_jumps_then_symbol_halted_and_signals_denied() -> None:
    engine, clock = _engine(flash_crash_pct=1.0)
    clock.advance(100)
    events = engine.on_tick(tick(clock.now_ms(), 1.1 * 1.02))
    assert [(event.kind, event.symbol) for event in events] == [("symbol_halted", "EURUSD")]
    engine.apply(events[0])
    decision = engine.on_signal(signal(1, clock.now_ms()))
    assert decision.intent is None and isinstance(decision.events[0], OrderDenied)
    assert decision.events[0].check == "trading_state"


def test_signal_when_decided_before_then_duplicate() -> None:
    engine, clock = _engine()
    _send(engine, 1)
    assert engine.on_signal(signal(1, clock.now_ms(), "long", 0.5)).is_duplicate


def test_control_when_set_limit_then_limit_changes_and_unknown_limit_refused() -> None:
    engine, _ = _engine()
    changed = engine.on_control(_command("set_limit", 1, params={"max_position_lots": "0.2"}))
    assert changed.events[0].kind == "limit_changed" and engine.limits.max_position_lots == 0.2
    refused = engine.on_control(_command("set_limit", 2, params={"allowed_symbols": "X"}))
    assert refused.events[0].kind == "limit_refused"


def test_control_when_status_then_detail_is_json_with_command_id() -> None:
    engine, _ = _engine()
    _send(engine, 1)
    detail = json.loads(engine.on_control(_command("status", 7)).events[0].detail)
    assert (detail["command_id"], detail["orders"], detail["trading_state"]) == ("c7", 1, "ACTIVE")


def test_daily_loss_when_breached_then_denial_halts_trading() -> None:
    engine, clock = _engine(daily_loss_limit=100.0, flash_crash_pct=50.0)
    client_order_id = _send(engine, 1)
    from tickwave.contracts import OrderFilled

    order = engine.orders[client_order_id]
    engine.apply(OrderFilled(client_order_id=client_order_id, signal_id=order.signal_id, symbol="EURUSD",
                             model_id="m1", model_version=1, event_at_ms=clock.now_ms(), fill_id="f1",
                             fill_price=1.1, fill_lots=0.5, cumulative_lots=0.5, is_final=True))  # fmt: skip
    engine.on_tick(tick(clock.now_ms(), 1.09))  # 0.5 lots x 100k x -0.01 = -500
    decision = engine.on_signal(signal(2, clock.now_ms(), "short", 0.5))
    assert [type(event).__name__ for event in decision.events] == ["OrderDenied", "RiskEvent"]
    assert decision.events[1].trading_state == "HALTED"  # type: ignore[union-attr]
