"""Decisions on signals and ticks: signal -> sizing -> risk gate -> order intent, and the breakers.

Read-only: each function reads the :class:`~execution.core.engine_state.EngineState` and returns
contract events (to be journaled, then applied by the state's one writer) and the orders
to send; none changes the state. The risk event builder here is shared with the operator
commands (:mod:`execution.core.commands`) and the protective stops (:mod:`execution.core.stops`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

import msgspec
import tickwave_core

from execution.core.engine_state import EngineState
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
        """Mark the day's start; trip the flash-crash and loss breakers (the tick already observed; the core's)."""
        now_ms = self.clock.now_ms()
        day = self.valuation.trading_day(self.state.limits, now_ms)
        return self.state.tick_breakers(tick.symbol, day, self.events.instance_id, now_ms)

    def follow_ups(self, event: Message) -> list[RiskEvent]:
        """Return the breaker trips an applied event leads to: a reject in a row too many, a fill's loss."""
        kind = type(event)  # contract messages are never subclassed; most events are neither
        if kind is not OrderFilled and kind is not OrderRejected:
            return []
        applied = cast(OrderFilled | OrderRejected, event)  # a fill: booked just now
        day = self.valuation.trading_day(self.state.limits, applied.event_at_ms)
        return self.state.follow_ups(applied, day, self.events.instance_id)
