"""The engine: the decision path (signal -> sizing -> risk gate -> order intent) with an injected clock.

The engine is event-sourced and holds no I/O (no broker, bus or disk). It coordinates:

- :class:`~execution.core.engine_state.EngineState`, the trading state and its single writer;
- :class:`~execution.core.decisions.SignalDecisions` (signals, tick breakers, follow-ups),
  :class:`~execution.core.commands.Commands` (operator commands) and
  :class:`~execution.core.stops.ProtectiveStops`, which only *read* the state and return
  contract events and orders;
- :class:`~execution.core.valuation.Valuation`, the day's P&L (the core's, as the state's own
  gate values it; a gate run on the engine's view reads it there), each fill's booked figures
  and the status summary.

The state changes only in :meth:`Engine.apply`, which the shell calls with each event after
the journal has recorded it, and where no event exists to journal: a tick's quote
(:meth:`Engine.on_tick`), an operator's ``set_limit`` (limits come from the configuration,
so a restart returns to the configured ones and the command is not replayed) and the time
of a denied protective close. Replaying the journal through :meth:`Engine.apply` therefore
rebuilds exactly the state the process had (positions, orders, signals already decided,
trading state and symbol halts; with the ended orders and old decisions it had let go from
memory, :meth:`Engine.retire`, back until its first retirement), which is what makes a
restart safe: a signal whose decision is in the journal is never decided again.
"""

from __future__ import annotations

from collections.abc import KeysView, Sequence
from decimal import Decimal
from typing import Any

from execution.core.commands import Commands
from execution.core.decisions import ControlOutcome, Decision, EventBuilder, Severity, SignalDecisions
from execution.core.engine_state import TRADING_STATE, EngineState
from execution.core.limits import RiskLimits
from execution.core.positions import Book, Booking
from execution.core.risk import RiskView
from execution.core.sizing import SizingPolicy
from execution.core.state import Order
from execution.core.stops import ProtectiveStops
from execution.core.valuation import Valuation, status_summary
from tickwave.clock import Clock
from tickwave.contracts import (
    ControlCommand,
    Message,
    OrderIntent,
    OrderSubmitted,
    RiskEvent,
    Signal,
    Tick,
    TradingState,
)


class Engine:
    """Decides on signals, applies events; holds no I/O."""

    def __init__(self, limits: RiskLimits, sizing: SizingPolicy, clock: Clock, instance_id: str = "execution") -> None:
        self.sizing = sizing
        self.clock = clock
        self.instance_id = instance_id
        self.state = EngineState(limits)
        self.valuation = Valuation(self.state)
        self.state.view.day_pnl = self.valuation  # a gate run on the view (risk.first_denial) values the day through it
        events = EventBuilder(instance_id, self.state)
        self.events = events
        self.decisions = SignalDecisions(self.state, sizing, clock, events, self.valuation)
        self.commands = Commands(self.state, clock, events, self.valuation)
        self.stops = ProtectiveStops(self.state, clock, events)

    # -----------------------------------------------------------------------------------
    # Decisions (read-only)
    # -----------------------------------------------------------------------------------

    def on_signal(self, signal: Signal) -> Decision:
        """Size the signal and run the risk gate; a signal decided before yields nothing."""
        return self.decisions.on_signal(signal)

    def submission(self, intent: OrderIntent, venue: str = "") -> OrderSubmitted:
        """Return the event that records ``intent`` as sent to ``venue`` (journaled before the broker call)."""
        return self.decisions.submission(intent, venue)

    def on_tick(self, tick: Tick) -> list[RiskEvent]:
        """Keep the latest quote and price window; mark the day's start; trip the flash-crash and loss breakers."""
        self.state.observe_tick(tick)
        return self.decisions.on_tick(tick)

    def on_control(self, command: ControlCommand) -> ControlOutcome:
        """Turn an operator command into state-change events and the orders to send; put new limits in force."""
        outcome = self.commands.on_control(command)
        if outcome.limits is not None:
            self.state.set_limits(outcome.limits)
        return outcome

    def protective_stop(self, tick: Tick) -> ControlOutcome:
        """Close a position whose price crossed its stop loss or take profit (see :class:`ProtectiveStops`)."""
        outcome = self.stops.on_tick(tick)
        if outcome.events and outcome.has_denials:  # mostly no events: a tick crosses no stop
            self.state.note_stop_denied(tick.symbol, self.clock.now_ms())
        return outcome

    def booked(self, events: Sequence[Message]) -> list[Message]:
        """Return ``events`` with each ``Fill`` record carrying its booking (see :meth:`Valuation.booked`)."""
        return self.valuation.booked(events)

    # -----------------------------------------------------------------------------------
    # State changes (journal replay and live)
    # -----------------------------------------------------------------------------------

    def apply(self, event: Message) -> list[RiskEvent]:
        """Apply one recorded event; return follow-up events (breaker trips) to record and apply.

        An illegal order transition is a defect: it is logged, kept in ``defects`` and the
        order is left as it was (no follow-ups).
        """
        if self.state.apply(event):
            return self.decisions.follow_ups(event)
        return []

    # -----------------------------------------------------------------------------------
    # Queries
    # -----------------------------------------------------------------------------------

    @property
    def limits(self) -> RiskLimits:
        """The limits in force (the configured ones, or an operator's ``set_limit``)."""
        return self.state.limits

    @limits.setter
    def limits(self, limits: RiskLimits) -> None:
        self.state.set_limits(limits)

    @property
    def view(self) -> RiskView:
        """What the risk checks read."""
        return self.state.view

    @property
    def orders(self) -> dict[str, Order]:
        """Every order, by client order id."""
        return self.state.orders

    @property
    def books(self) -> dict[str, Book]:
        """Each symbol's open lots."""
        return self.state.books

    @property
    def bookings(self) -> dict[str, Booking]:
        """What each booked fill did to its position, by fill id."""
        return self.state.bookings

    @property
    def decided_signals(self) -> KeysView[str]:
        """The signals decided (an order or a denial is journaled), but those let go (see :meth:`retire`)."""
        return self.state.decided_signals.keys()

    def retire(self, before_ms: int) -> int:
        """Let go of ended orders and decided signals older than ``before_ms`` (see :meth:`EngineState.retire`)."""
        return self.state.retire(before_ms)

    @property
    def defects(self) -> list[str]:
        """Impossible events met (illegal transitions, fills of unknown instruments)."""
        return self.state.defects

    @property
    def marked_day(self) -> str:
        """The trading day whose start the day's marks hold."""
        return self.state.marked_day

    @property
    def trading_state(self) -> TradingState:
        """Return ACTIVE, REDUCING or HALTED."""
        return self.state.view.trading_state

    def cancellations_for(self, event: RiskEvent) -> list[Order]:
        """Return the working orders a halt cancels (all of them, or the halted symbol's)."""
        return self.state.cancellations_for(event)

    def working_orders(self) -> list[Order]:
        """Return the orders the broker may still fill."""
        return self.state.working_orders()

    def orders_in_window(self, since_ms: int) -> tuple[int, dict[str, Order]]:
        """Return a reconciliation window's start and its orders (see :meth:`EngineState.orders_in_window`)."""
        return self.state.orders_in_window(since_ms)

    def daily_pnl(self, now_ms: int) -> Decimal | None:
        """Return the trading day's P&L in the account currency, or None when a currency has no rate."""
        return self.valuation.daily_pnl(self.state.limits, now_ms)

    def status(self) -> dict[str, Any]:
        """Return a plain summary for ``tickwave execution status``."""
        return status_summary(self.valuation, self.instance_id, self.clock.now_ms())

    # -----------------------------------------------------------------------------------
    # Event builders
    # -----------------------------------------------------------------------------------

    def trading_state_event(self, state: TradingState, detail: str, check: str) -> RiskEvent:
        """Build the critical event that moves trading to ``state`` (a breaker outside the gate)."""
        return self.events.risk(TRADING_STATE, "critical", detail, self.clock.now_ms(), state, check=check)

    def report(self, kind: str, detail: str, severity: Severity = "warning") -> RiskEvent:
        """Build an informational risk event (reconciliation differences, start-up)."""
        return self.events.risk(kind, severity, detail, self.clock.now_ms())


def replay(engine: Engine, events: Sequence[Message]) -> None:
    """Apply recorded events in order (follow-ups were recorded too, so they are not re-derived)."""
    for event in events:
        engine.apply(event)
