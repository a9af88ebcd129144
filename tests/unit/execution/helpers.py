"""Builders shared by the execution unit tests."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.backtest import synthetic_holdout
from execution.app import build_service
from execution.core.broker import Broker
from execution.core.engine import Engine
from execution.service import ExecutionService
from models.engine_backtest import holdout_signals, holdout_ticks
from tickwave.audit_chain import ChainLink
from tickwave.clock import ManualClock
from tickwave.config import ExecutionSettings, MarketSettings, RiskSettings, load_settings
from tickwave.contracts import Message, OrderFilled, OrderSubmitted, RiskEvent, Signal, Tick
from tickwave.modeling import SignalRules

# A Wednesday, 12:00 UTC: the fx market is open.
WEDNESDAY_NOON_MS = 1_700_049_600_000


def holdout_timeline(rows: int, model_id: str) -> tuple[list[Tick], list[Signal]]:
    """The benchmark's synthetic holdout of ``rows`` minute bars: its ticks and the signals of ``model_id`` on it."""
    frame, probabilities = synthetic_holdout(rows)
    ticks = holdout_ticks(frame, "1m")
    return ticks, holdout_signals(frame, probabilities, SignalRules(), "1m", model_id, 1)


class ListPublisher:
    """Keeps published audit events in a list (the unit tests' stand-in for orders.events)."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.links: dict[str, ChainLink] = {}  # event id -> its chain link

    def publish(self, message: Message, key: str, position: int, link: ChainLink | None = None) -> None:
        self.messages.append(message)
        if link is not None:
            self.links[message.event_id] = link  # type: ignore[attr-defined]

    def resume_position(self) -> int:
        return 1 << 62  # a fresh list: nothing from earlier runs is republished into it

    def flush(self, timeout_s: float) -> int:
        return 0

    def of_type(self, kind: type[Message]) -> list[Any]:
        return [message for message in self.messages if isinstance(message, kind)]


class BrokerWith:
    """A broker with some of its attributes replaced, delegating the rest (set as ``service.broker``).

    A test that changes what the service's broker answers wraps the broker, leaving the
    broker itself and its class as the service built them.
    """

    def __init__(self, broker: Broker, **replaced: Any) -> None:
        self.wrapped = broker
        self.__dict__.update(replaced)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.wrapped, name)


# The market open at every hour: the tests' clocks need not fall on a weekday.
ALWAYS_OPEN = MarketSettings(hours="always")


def execution_settings(**risk: Any) -> ExecutionSettings:
    return ExecutionSettings(risk=RiskSettings(**risk))


def make_service(
    state_dir: Path,
    clock: ManualClock,
    publisher: ListPublisher | None = None,
    *,
    market_hours: str = "fx",
    paper_broker: dict[str, Any] | None = None,
    reconciliation: dict[str, Any] | None = None,
    **risk: Any,
) -> ExecutionService:
    execution = {
        "journal_fsync": False,
        "risk": risk,
        "paper_broker": paper_broker or {},
        "reconciliation": reconciliation or {},
    }
    settings = load_settings(state_dir=state_dir, market={"hours": market_hours}, execution=execution)
    service = build_service(settings, publisher or ListPublisher(), clock)
    service.start()
    return service


def signal(
    index: int,
    now_ms: int,
    direction: str = "long",
    strength: float = 1.0,
    symbol: str = "EURUSD",
    model_id: str = "m1",
) -> Signal:
    return Signal(
        signal_id=Signal.make_id(model_id, 1, symbol, "1m", index),
        symbol=symbol,
        timeframe="1m",
        bar_start_ms=index,
        direction=direction,
        strength=strength,
        confidence=0.8,  # type: ignore[arg-type]
        model_id=model_id,
        model_version=1,
        created_at_ms=now_ms,
    )


def tick(now_ms: int, mid: float = 1.1, symbol: str = "EURUSD", spread: float = 0.0001, seq: int = 0) -> Tick:
    return Tick(symbol=symbol, time_ms=now_ms, seq=seq, bid=mid - spread / 2, ask=mid + spread / 2)


def apply_all(engine: Engine, events: list[RiskEvent]) -> None:
    """Apply ``events`` and what each leads to (as the service records them)."""
    for event in events:
        for follow_up in engine.apply(event):
            engine.apply(follow_up)


def price_at(engine: Engine, symbol: str, mid: float, spread: float | None = None) -> list[RiskEvent]:
    """Price ``symbol`` at ``mid`` now (spread: 0.002 % of it unless given); apply what the breakers decided."""
    events = engine.on_tick(tick(engine.clock.now_ms(), mid, symbol, mid * 0.00002 if spread is None else spread))
    apply_all(engine, events)
    return events


def record_fill(engine: Engine, number: int, symbol: str, lots: Decimal, price: float) -> None:
    """Record a filled order of ``lots`` (signed) at ``price`` straight into the engine."""
    submitted, filled = filled_order(number, symbol, lots, price, engine.clock.now_ms())
    engine.apply(submitted)
    apply_all(engine, engine.apply(filled))


def filled_order(number: int, symbol: str, lots: Decimal, price: float, now: int) -> tuple[OrderSubmitted, OrderFilled]:
    """The events of an order of ``lots`` (signed) filled at ``price`` at once."""
    side = "buy" if lots > 0 else "sell"
    client_order_id = f"tw-{number}"
    submitted = OrderSubmitted(
        client_order_id=client_order_id,
        signal_id=f"s{number}",
        symbol=symbol,
        model_id="m",
        model_version=1,
        event_at_ms=now,
        side=side,
        quantity_lots=float(abs(lots)),
        order_type="market",
    )
    filled = OrderFilled(
        client_order_id=client_order_id,
        signal_id=f"s{number}",
        symbol=symbol,
        model_id="m",
        model_version=1,
        event_at_ms=now,
        fill_id=f"f{number}",
        fill_price=price,
        fill_lots=float(abs(lots)),
        cumulative_lots=float(abs(lots)),
        is_final=True,
    )
    return submitted, filled
