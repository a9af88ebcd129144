"""Decisions on signals and ticks: signal -> sizing -> risk gate -> order intent, and the breakers.

Read-only: each function reads the :class:`~execution.core.engine_state.EngineState` and returns
contract events (to be journaled, then applied by the state's one writer) and the orders
to send; none changes the state. The risk event builder here is shared with the operator
commands (:mod:`execution.core.commands`) and the protective stops (:mod:`execution.core.stops`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast

import msgspec
import tickwave_core
from tickwave_core import flash_crash_words

from execution.core.engine_state import DAY_ROLLOVER, SYMBOL_HALTED, TRADING_STATE, EngineState
from execution.core.limits import RiskLimits
from execution.core.sizing import SizingPolicy
from execution.core.valuation import Valuation
from tickwave.clock import Clock
from tickwave.contracts import (
    Message,
    OrderDenied,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
    Signal,
    Tick,
    TradingState,
)

Severity = Literal["info", "warning", "critical"]


class Decision(msgspec.Struct, frozen=True):
    """What the engine decided about one signal.

    ``events`` (denials, breaker trips) are to be journaled and then applied; ``intent``
    is the order to send, if any; a duplicate signal yields nothing. A frozen msgspec
    struct (built once per signal: 1.2 -> 0.2 us against a frozen dataclass).
    """

    intent: OrderIntent | None = None
    events: tuple[OrderDenied | RiskEvent, ...] = ()
    is_duplicate: bool = False


@dataclass(frozen=True)
class ControlOutcome:
    """What a command or a protective stop leads to: events to record, orders to send; a duplicate: none.

    ``limits``: the limits an operator's ``set_limit`` puts in force (None: unchanged).
    """

    events: tuple[RiskEvent | OrderDenied, ...] = ()
    intents: tuple[OrderIntent, ...] = ()
    is_duplicate: bool = False
    limits: RiskLimits | None = None

    @property
    def has_denials(self) -> bool:
        """True when the gate refused one of the orders (recorded as an ``OrderDenied``)."""
        return any(isinstance(event, OrderDenied) for event in self.events)


class EventBuilder:
    """Builds the engine's risk events, each with a stable id (instance, kind, symbol, time, sequence)."""

    def __init__(self, instance_id: str, state: EngineState) -> None:
        self.instance_id = instance_id
        self._state = state  # its core numbers the events (an id source, not state: ids differ within a run)

    def risk(
        self,
        kind: str,
        severity: Severity,
        detail: str,
        now_ms: int,
        trading_state: TradingState | None = None,
        symbol: str = "",
        check: str = "",
    ) -> RiskEvent:
        """Build one risk event; its trading state is ``trading_state``, else the current one."""
        state = trading_state or self._state.view.trading_state
        return self._state.risk_event(self.instance_id, kind, severity, detail, now_ms, state, symbol, check)


def closing_orders(
    state: EngineState, symbol: str, signal_for: Callable[[int], Signal], now_ms: int
) -> tuple[list[OrderIntent], list[OrderDenied]]:
    """Reduce-only market orders (at most ``max_order_lots`` each) that close ``symbol``'s position.

    They pass the operator checks (price, market hours, collar, rate), not the trading
    state: an operator's flatten and a protective stop work while HALTED. ``signal_for``
    names the decision each part traces to. The core's (``decide.rs``), one call.
    """
    return state.closing_orders(symbol, signal_for, now_ms)


class SignalDecisions:
    """The gate for signals and the breakers on ticks, fills and rejects (reads the state only)."""

    def __init__(
        self, state: EngineState, sizing: SizingPolicy, clock: Clock, events: EventBuilder, valuation: Valuation
    ) -> None:
        self.state = state
        self.sizing = sizing
        self.clock = clock
        self.events = events
        self.valuation = valuation

    def on_signal(self, signal: Signal) -> Decision:
        """Size the signal and run the risk gate in the core (``decide.rs``); a signal decided before yields nothing."""
        intent, events, is_duplicate = self.state.on_signal(
            signal, self.sizing.rules, self.events.instance_id, self.clock.now_ms()
        )
        return Decision(intent, events, is_duplicate)

    def submission(self, intent: OrderIntent, venue: str = "") -> OrderSubmitted:
        """Return the event that records ``intent`` as sent to ``venue`` (journaled before the broker call)."""
        return tickwave_core.submission(intent, venue, self.clock.now_ms())

    def on_tick(self, tick: Tick) -> list[RiskEvent]:
        """Mark the day's start; trip the flash-crash and loss breakers (the tick is already observed)."""
        state = self.state
        limits = state.limits
        events: list[RiskEvent] = []
        now_ms = self.clock.now_ms()
        day = self.valuation.trading_day(limits, now_ms)
        if day != state.marked_day:
            marks = {symbol: str(amount) for symbol, amount in sorted(self.valuation.unrealized_now(limits).items())}
            events.append(
                self.events.risk(
                    DAY_ROLLOVER, "info", json.dumps({"trading_day": day, "marks": marks}), now_ms, check="daily_loss"
                )
            )
        window = state.view.price_windows[tick.symbol]
        move = window.move_pct()
        if move > limits.flash_crash_pct and tick.symbol not in state.view.halted_symbols:
            detail = flash_crash_words(tick.symbol, move, limits.flash_crash_window_ms)
            events.append(
                self.events.risk(SYMBOL_HALTED, "critical", detail, now_ms, symbol=tick.symbol, check="flash_crash")
            )
        if day == state.marked_day:
            events.extend(self.loss_breaker(now_ms))
        return events

    def loss_breaker(self, now_ms: int, fill: OrderFilled | None = None) -> list[RiskEvent]:
        """Move trading to ``daily_loss_action`` when the day's loss reaches the limit (only from ACTIVE).

        ``fill``: the fill booked just now (at ``now_ms``), the only change since the last question.
        """
        state = self.state
        if state.view.trading_state != "ACTIVE":
            return []
        limits, floor, valuation = state.limits, -state.limits.daily_loss_limit, self.valuation
        if valuation.is_above(limits, now_ms, floor) if fill is None else valuation.is_above_after(fill, limits, floor):
            return []  # short of the limit (most ticks and fills: decided without the exact sums)
        pnl = valuation.daily_pnl(limits, now_ms)
        if pnl is None or pnl > floor:
            return []
        detail = f"daily P&L {pnl:.2f} {limits.account_currency} breaches -{limits.daily_loss_limit}"
        return [
            self.events.risk(TRADING_STATE, "critical", detail, now_ms, limits.daily_loss_action, check="daily_loss")
        ]

    def follow_ups(self, event: Message) -> list[RiskEvent]:
        """Return the breaker trips an applied event leads to: a reject in a row too many, a fill's loss."""
        kind = type(event)  # contract messages are never subclassed; most events are neither
        if kind is OrderFilled:  # booked just now (the engine asks only after an event changed its state)
            return self.loss_breaker(cast(OrderFilled, event).event_at_ms, cast(OrderFilled, event))
        if kind is OrderRejected:
            event = cast(OrderRejected, event)
            view, limits = self.state.view, self.state.limits
            if view.consecutive_rejects >= limits.max_consecutive_rejects and view.trading_state != "HALTED":
                detail = f"{view.consecutive_rejects} broker rejects in a row (last: {event.reason})"
                return [
                    self.events.risk(
                        TRADING_STATE, "critical", detail, event.event_at_ms, "HALTED", check="consecutive_rejects"
                    )
                ]
        return []
