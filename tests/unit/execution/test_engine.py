"""The engine's breakers and commands, driven by events and a test clock."""

from __future__ import annotations

import json

import msgspec
import pytest

from execution.core.engine import Engine
from execution.core.limits import RiskLimits
from execution.core.sizing import SizingPolicy
from tests.unit.execution.helpers import ALWAYS_OPEN, WEDNESDAY_NOON_MS, execution_settings, signal, tick
from tickwave.clock import ManualClock
from tickwave.contracts import ControlCommand, OrderDenied, OrderRejected, RiskEvent


def _engine(**overrides: object) -> tuple[Engine, ManualClock]:
    settings = execution_settings(**overrides)
    clock = ManualClock(WEDNESDAY_NOON_MS)
    engine = Engine(RiskLimits.from_settings(settings, market=ALWAYS_OPEN), SizingPolicy.from_settings(settings), clock)
    _tick(engine, 1.1)
    return engine, clock


def _tick(engine: Engine, mid: float, symbol: str = "EURUSD", spread: float = 0.0002) -> list[RiskEvent]:
    """Feed a tick and apply what it leads to, as the service does (journal, then apply)."""
    events = engine.on_tick(tick(engine.clock.now_ms(), mid, symbol, spread))
    for event in events:
        engine.apply(event)
    return events


def _fill(engine: Engine, client_order_id: str, price: float, number: int = 1) -> list[RiskEvent]:
    from tickwave.contracts import OrderFilled

    order = engine.orders[client_order_id]
    follow_ups = engine.apply(
        OrderFilled(
            client_order_id=client_order_id,
            signal_id=order.signal_id,
            symbol=order.symbol,
            model_id="m1",
            model_version=1,
            event_at_ms=engine.clock.now_ms(),
            fill_id=f"f{number}",
            fill_price=price,
            fill_lots=order.quantity_lots,
            cumulative_lots=order.quantity_lots,
            is_final=True,
        )
    )
    for event in follow_ups:
        engine.apply(event)
    return follow_ups


def _command(command: str, number: int = 0, **fields: object) -> ControlCommand:
    return ControlCommand(
        command_id=f"c{number}",
        command=command,
        issued_by="t",
        issued_at_ms=WEDNESDAY_NOON_MS,  # type: ignore[arg-type]
        **fields,
    )  # type: ignore[arg-type]


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
            client_order_id=order.client_order_id,
            signal_id=order.signal_id,
            symbol="EURUSD",
            model_id="m1",
            model_version=1,
            event_at_ms=clock.now_ms(),
            reason="no money",
        )
        follow_ups = engine.apply(reject)
        for event in follow_ups:
            engine.apply(event)
    assert [event.trading_state for event in follow_ups] == ["HALTED"]
    assert engine.trading_state == "HALTED"


def test_flash_crash_when_tick_jumps_then_symbol_halted_and_signals_denied() -> None:
    engine, clock = _engine(flash_crash_pct=1.0)
    clock.advance(100)
    events = _tick(engine, 1.1 * 1.02)
    assert [(event.kind, event.symbol) for event in events] == [("symbol_halted", "EURUSD")]
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


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("max_position_lots", "abc"),
        ("max_position_lots", "nan"),
        ("daily_loss_limit", "-5"),
        ("price_collar_bps", "inf"),
        ("max_orders_per_second", "1.5"),
        ("daily_loss_limit", ""),
    ],
)
def test_control_when_set_limit_value_invalid_then_refused_and_limits_unchanged(name: str, text: str) -> None:
    engine, _ = _engine()
    before = engine.limits

    outcome = engine.on_control(_command("set_limit", 1, params={name: text}))

    assert [(event.kind, event.check) for event in outcome.events] == [("limit_refused", "operator")]
    assert name in outcome.events[0].detail and engine.limits == before


def test_control_when_status_then_detail_is_json_with_command_id() -> None:
    engine, _ = _engine()
    _send(engine, 1)
    detail = json.loads(engine.on_control(_command("status", 7)).events[0].detail)
    assert (detail["command_id"], detail["orders"], detail["trading_state"]) == ("c7", 1, "ACTIVE")


def test_daily_loss_when_breached_on_a_tick_then_reducing_and_only_reductions_pass() -> None:
    engine, clock = _engine(daily_loss_limit=100.0, flash_crash_pct=50.0)
    _fill(engine, _send(engine, 1), 1.1)  # long 0.5 lots at 1.1

    events = _tick(engine, 1.09)  # 0.5 lots x 100k x -0.01 = -500 USD: a breach, seen on the tick itself

    assert [(event.kind, event.trading_state, event.severity) for event in events] == [
        ("trading_state", "REDUCING", "critical")
    ]
    grow = engine.on_signal(signal(2, clock.now_ms(), "long", 1.0))
    close = engine.on_signal(signal(3, clock.now_ms(), "flat", 0.5))
    assert isinstance(grow.events[0], OrderDenied) and grow.events[0].check == "trading_state"
    assert close.intent is not None and close.intent.side == "sell" and close.intent.quantity_lots == 0.5


def test_daily_loss_when_action_is_halted_then_halted() -> None:
    engine, _ = _engine(daily_loss_limit=100.0, flash_crash_pct=50.0, daily_loss_action="HALTED")
    _fill(engine, _send(engine, 1), 1.1)

    events = _tick(engine, 1.09)

    assert [event.trading_state for event in events] == ["HALTED"] and engine.trading_state == "HALTED"


def _position(engine: Engine, number: int, symbol: str, lots: float, price: float) -> None:
    """Put a filled position on the books (an order submitted and filled)."""
    from tickwave.contracts import OrderFilled, OrderSubmitted

    side = "buy" if lots > 0 else "sell"
    now = engine.clock.now_ms()
    engine.apply(
        OrderSubmitted(
            client_order_id=f"p{number}",
            signal_id=f"ps{number}",
            symbol=symbol,
            model_id="m1",
            model_version=1,
            event_at_ms=now,
            side=side,
            quantity_lots=abs(lots),
            order_type="market",
        )
    )
    engine.apply(
        OrderFilled(
            client_order_id=f"p{number}",
            signal_id=f"ps{number}",
            symbol=symbol,
            model_id="m1",
            model_version=1,
            event_at_ms=now,
            fill_id=f"pf{number}",
            fill_price=price,
            fill_lots=abs(lots),
            cumulative_lots=abs(lots),
            is_final=True,
        )
    )


def test_flatten_when_positions_open_then_reduce_only_orders_close_them_even_when_halted() -> None:
    engine, _ = _engine(max_order_lots=0.5, max_position_lots=5.0)
    _tick(engine, 150.0, "USDJPY", spread=0.02)
    _position(engine, 1, "EURUSD", 1.2, 1.1)
    _position(engine, 2, "USDJPY", -0.3, 150.0)
    _apply_events(engine, engine.on_control(_command("halt", 1)).events)

    outcome = engine.on_control(_command("flatten", 2, reason="end of day"))

    orders = [(intent.symbol, intent.side, intent.quantity_lots) for intent in outcome.intents]
    assert orders == [("EURUSD", "sell", 0.5), ("EURUSD", "sell", 0.5), ("EURUSD", "sell", 0.2), ("USDJPY", "buy", 0.3)]
    assert all(intent.signal_id.startswith("flatten-c2-") for intent in outcome.intents)
    report = outcome.events[0]
    assert isinstance(report, RiskEvent) and report.kind == "flatten" and "EURUSD 1.2 lots" in report.detail
    engine.apply(_command("flatten", 2))
    assert engine.on_control(_command("flatten", 2)).is_duplicate


def test_flatten_when_no_price_then_denied_by_its_own_check_and_reported() -> None:
    engine, _ = _engine()
    _position(engine, 1, "GBPUSD", 0.4, 1.27)  # never quoted

    outcome = engine.on_control(_command("flatten", 1, symbol="GBPUSD"))

    assert outcome.intents == ()
    denied = [event for event in outcome.events if isinstance(event, OrderDenied)]
    assert [denial.check for denial in denied] == ["no_price"] and "1 denied" in outcome.events[0].detail  # type: ignore[union-attr]


def _apply_events(engine: Engine, events: tuple[object, ...]) -> None:
    for event in events:
        engine.apply(event)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "timeframe", "symbol", "is_driver"),
    [
        ({}, "1m", "EURUSD", True),
        ({}, "1s", "EURUSD", False),
        ({"signal_timeframes": {"USDJPY": "5m"}}, "5m", "USDJPY", True),
        ({"signal_timeframes": {"USDJPY": "5m"}}, "1m", "USDJPY", False),
        ({"signal_timeframe": "1s"}, "1s", "EURUSD", True),
    ],
)
def test_signal_when_timeframe_is_not_the_symbols_driver_then_denied_by_its_own_check(
    overrides: dict[str, object], timeframe: str, symbol: str, is_driver: bool
) -> None:
    engine, clock = _engine(**overrides)
    _tick(engine, 150.0 if symbol == "USDJPY" else 1.1, symbol)
    base = signal(1, clock.now_ms(), "long", 0.5, symbol=symbol)
    sent = msgspec.structs.replace(base, timeframe=timeframe, signal_id=f"{base.signal_id}-{timeframe}")

    decision = engine.on_signal(sent)

    denials = [event for event in decision.events if isinstance(event, OrderDenied)]
    if is_driver:
        assert decision.intent is not None and not denials
    else:
        assert decision.intent is None and [d.check for d in denials] == ["signal_timeframe"]
        assert f"{symbol} is driven by" in denials[0].reason
