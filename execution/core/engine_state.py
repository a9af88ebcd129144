"""The engine's trading state and its one writer, held by the execution core (``engine_state.rs``).

Everything the journal rebuilds (orders, positions and their books, signals and commands
already decided, trading state and symbol halts, realised P&L per day, the day's marks)
plus the latest quotes and the limits in force. :class:`EngineState` is the only code that
changes it: :meth:`EngineState.apply` with each recorded event, :meth:`EngineState.observe_tick`
with each validated quote (ticks are prices, not journaled), :meth:`EngineState.set_limits`
with an operator's ``set_limit``, :meth:`EngineState.note_stop_denied` with a protective close
the gate refused and :meth:`EngineState.retire` with the reconciliation's window. The decision
code (:mod:`execution.core.decisions`, :mod:`execution.core.commands`, :mod:`execution.core.stops`,
:mod:`execution.core.valuation`) only reads it.

The rules and the values are the core's; this class is its facade, so what its readers read is a
plain attribute: the containers the core keeps in step with its values (the books, bookings, the
risk view's positions, pending lots, quotes and halts; the flash-crash windows are the core's
alone) and the scalars the facade copies after each change. The orders and the decided signals
are the core's containers read through a property: after a replay in the core, which writes the
containers once at its end, those two (a row per order and per signal) are written when first read.
A derived answer is one call to the core (``working_orders``, ``orders_in_window``,
``window_start``, ``status_of``, ``is_decided``), and so is a decision (``decide.rs``).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Final

import tickwave_core
from tickwave_core import Book, Booking, DayValuation, Order, Sizing
from tickwave_core import book_fill as book_fill  # the fill booking rule the state books with

from execution.core.limits import RiskLimits
from execution.core.risk import RiskView
from execution.core.state import OrderStatus
from tickwave.clock import Clock
from tickwave.contracts import (
    ControlCommand,
    Message,
    OrderDenied,
    OrderFilled,
    OrderIntent,
    OrderRejected,
    RiskEvent,
    Side,
    Signal,
    Tick,
    TradingState,
)

if TYPE_CHECKING:
    from tickwave_core import GateDenial  # a type of the core's stubs only

__all__ = [
    "DAY_ROLLOVER",
    "FLATTEN",
    "RATE_WINDOW_MS",
    "RETIRE_MARGIN_MS",
    "SYMBOL_HALTED",
    "SYMBOL_RESUMED",
    "TRADING_STATE",
    "EngineState",
    "book_fill",
]

RATE_WINDOW_MS: Final[int] = tickwave_core.RATE_WINDOW_MS
# How far past the reconciliation's window ended orders stay in memory, and how far a signal's
# creation time may run ahead of its decision's (two hosts' clocks): see EngineState.retire.
RETIRE_MARGIN_MS: Final[int] = tickwave_core.RETIRE_MARGIN_MS

# Risk event kinds that change state (the rest only inform).
TRADING_STATE: Final = "trading_state"
SYMBOL_HALTED: Final = "symbol_halted"
SYMBOL_RESUMED: Final = "symbol_resumed"
FLATTEN: Final = "flatten"
DAY_ROLLOVER: Final = "day_rollover"  # marks each position's unrealised P&L at the trading day's start


class EngineState:
    """What the engine knows; changed only by its own methods (the single writer), which the core carries out."""

    def __init__(self, limits: RiskLimits, view: RiskView | None = None) -> None:
        core = tickwave_core.EngineState(limits, view)
        self._core = core
        self.limits = limits
        self.view: RiskView = core.view
        self.books: dict[str, Book] = core.books
        # What each booked fill did to its position (by fill_id): a redelivered Fill record gets the same figures.
        self.bookings: dict[str, Booking] = core.bookings
        self.applied_commands: set[str] = core.applied_commands
        self.stop_denied_at_ms: dict[str, int] = core.stop_denied_at_ms  # protective closes denied (not journaled)
        # Realised P&L per trading day and quote currency (exact); converted only when valued.
        self.realized_by_day: dict[str, dict[str, Decimal]] = core.realized_by_day
        # Unrealised P&L of each position (quote currency) at the start of ``marked_day``.
        self.day_marks: dict[str, Decimal] = core.day_marks
        self.marked_day = ""
        self.defects: list[str] = core.defects
        # Ended orders created before this, their fills' bookings and the signals decided before it were let
        # go (see retire); 0: everything is kept. The counts: how many orders and decided signals were let go.
        self.retired_before_ms = 0
        self.retired_orders = 0
        self.retired_signals = 0
        # Bumped by every change the day's P&L depends on (the latest ticks, the books and realised P&L, the
        # day's marks), so a valuation is reused only while nothing it read changed.
        self.pnl_revision = 0
        # Bumped by the changes of those that are not ticks (a fill booked, the day's marks).
        self.books_revision = 0

    @property
    def orders(self) -> dict[str, Order]:
        """Every order kept, by client order id, in the order first stored."""
        return self._core.orders  # the core's, brought up to date first after a replay

    @property
    def decided_signals(self) -> dict[str, int]:
        """Signal id -> decided at (ms), in journal order."""
        return self._core.decided_signals  # as ``orders``

    # -----------------------------------------------------------------------------------
    # The writers
    # -----------------------------------------------------------------------------------

    def apply(self, event: Message) -> bool:
        """Apply one recorded event; return False when it changed nothing (a fill seen before, a defect).

        An illegal order transition is a defect: it is logged, kept in ``defects`` and the
        order is left as it was.
        """
        core = self._core
        if not core.apply(event):
            return False
        pnl_revision, books_revision = core.revisions()
        if books_revision != self.books_revision:  # a fill booked or the day marked
            self.books_revision = books_revision
            self.marked_day = core.marked_day
            self.day_marks = core.day_marks
        self.pnl_revision = pnl_revision
        return True

    def observe_tick(self, tick: Tick) -> None:
        """Keep the latest quote (a late tick does not replace a newer one) and the symbol's price window."""
        self.pnl_revision = self._core.observe_tick(tick)

    def set_limits(self, limits: RiskLimits) -> None:
        """Put an operator's limits in force (until a restart: the command is not replayed)."""
        self.limits = limits
        self._core.set_limits(limits)

    def retire(self, before_ms: int) -> int:
        """Let go of what no later event or decision reads; return how many orders were let go.

        That is: the orders that ended (filled, rejected, canceled, expired) and were created
        before ``before_ms``, their fills' bookings, and the signals decided before it. The
        caller chooses ``before_ms`` past the reconciliation's window (so no broker answer
        about such an order is compared again) and keeps the journal, from which a restart
        rebuilds everything. A signal created before it can no longer be told from one decided
        before (see :meth:`SignalDecisions.on_signal`). The positions, their books, the day's
        realised P&L and the working orders are kept whatever their age.
        """
        core = self._core
        retired = core.retire(before_ms)
        self.retired_before_ms = core.retired_before_ms
        self.retired_orders = core.retired_orders
        self.retired_signals = core.retired_signals
        return retired

    def note_stop_denied(self, symbol: str, now_ms: int) -> None:
        """Remember that a protective close of ``symbol`` was denied at ``now_ms`` (retried a second later)."""
        self._core.note_stop_denied(symbol, now_ms)

    def booked(self, events: Sequence[Message]) -> list[Message]:
        """Return ``events`` with each ``Fill`` record carrying its booking (the core's ``booking.rs``).

        A symbol's only fill of the group is kept booked ahead (a cache, not state): the apply of
        that very fill takes it while no fill was booked since.
        """
        return self._core.booked(events)

    # -----------------------------------------------------------------------------------
    # Queries
    # -----------------------------------------------------------------------------------

    def working_orders(self) -> list[Order]:
        """Return the orders the broker may still fill."""
        return self._core.working_orders()

    def cancellations_for(self, event: RiskEvent) -> list[Order]:
        """Return the working orders ``event`` cancels: a halt's or a flatten's (all of them, or its symbol's)."""
        return self._core.cancellations_for(event)

    def orders_in_window(self, since_ms: int) -> tuple[int, dict[str, Order]]:
        """Return a reconciliation window's start and its orders, in time order.

        The window starts at the earlier of ``since_ms`` and the oldest order not yet terminal
        (so a working order's late fill is still compared); O(window + working orders).
        """
        return self._core.orders_in_window(since_ms)

    def window_start(self, since_ms: int) -> int:
        """Return where a reconciliation's window starts: ``since_ms``, or the oldest order not yet terminal."""
        return self._core.window_start(since_ms)

    def status_of(self, client_order_id: str) -> OrderStatus | None:
        """Return an order's status (None: not kept), without building its record."""
        return self._core.status_of(client_order_id)

    def first_denial(
        self, symbol: str, side: Side, quantity_lots: float, created_at_ms: int, now_ms: int
    ) -> GateDenial | None:
        """Run the core's gate on the order a signal asks for; the first denial ``(check, reason, halts)``, or None."""
        return self._core.denial(symbol, side, quantity_lots, created_at_ms, now_ms, False)

    def on_signal(
        self, signal: Signal, sizing: Sizing, instance_id: str, now_ms: int
    ) -> tuple[OrderIntent | None, tuple[OrderDenied | RiskEvent, ...], bool]:
        """Decide on a signal in the core (``decide.rs``): ``(intent, events, is_duplicate)``; changes nothing."""
        return self._core.on_signal(signal, sizing, instance_id, now_ms)

    def protective_stop(
        self, tick: Tick, clock: Clock, instance_id: str
    ) -> tuple[tuple[RiskEvent | OrderDenied, ...], tuple[OrderIntent, ...]] | None:
        """A protective stop on ``tick`` in the core (``stops.rs``): ``(events, intents)``, None when none is crossed.

        ``clock`` is asked the time only once a level is crossed; changes nothing.
        """
        return self._core.protective_stop(tick, clock, instance_id)

    def on_control(
        self, command: ControlCommand, instance_id: str, now_ms: int
    ) -> tuple[tuple[RiskEvent | OrderDenied, ...], tuple[OrderIntent, ...], bool] | str:
        """An operator's command in the core (``stops.rs``): ``(events, intents, is_duplicate)``; changes nothing.

        For ``set_limit`` and ``status``, which the shell decides, the words naming who issued it.
        """
        return self._core.on_control(command, instance_id, now_ms)

    def tick_breakers(self, symbol: str, day: str, instance_id: str, now_ms: int) -> list[RiskEvent]:
        """The breakers on a tick of ``symbol`` (already observed) in the core; ``day``: its trading day."""
        return self._core.tick_breakers(symbol, day, instance_id, now_ms)

    def follow_ups(self, event: OrderFilled | OrderRejected, day: str, instance_id: str) -> list[RiskEvent]:
        """The breaker trips an applied fill or reject leads to, in the core; ``day``: the event's trading day."""
        return self._core.follow_ups(event, day, instance_id)

    def unrealized_now(self) -> dict[str, Decimal]:
        """Unrealised P&L of every open position at its latest mid, in its quote currency (exact), by symbol."""
        return self._core.unrealized_now()

    def risk_event(
        self,
        instance_id: str,
        kind: str,
        severity: str,
        detail: str,
        now_ms: int,
        trading_state: TradingState,
        symbol: str = "",
        check: str = "",
    ) -> RiskEvent:
        """Build one risk event with its stable id (instance, kind, symbol, time, the next sequence number)."""
        return self._core.build_risk_event(instance_id, kind, severity, detail, now_ms, trading_state, symbol, check)

    def day_is_above(
        self,
        memo: DayValuation,
        limits: RiskLimits,
        now_ms: int,
        floor: Decimal,
        fill: OrderFilled | None = None,
    ) -> bool:
        """Whether the trading day's P&L at ``now_ms`` is known and above ``floor`` (the core's, ``day_loss.rs``).

        ``fill``: the fill booked just now, the only change since ``memo`` was last asked (the day at its time).
        """
        return self._core.day_is_above(memo, limits, now_ms, floor, fill)

    def daily_pnl(self, memo: DayValuation, limits: RiskLimits, now_ms: int) -> Decimal | None:
        """The trading day's P&L at ``now_ms`` in the account currency, exact (None: a currency has no rate)."""
        return self._core.daily_pnl(memo, limits, now_ms)

    def is_decided(self, signal_id: str) -> bool:
        """Return True when the signal was decided (and not let go)."""
        return self._core.is_decided(signal_id)
