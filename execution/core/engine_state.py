"""The engine's trading state and its one writer.

Everything the journal rebuilds (orders, positions and their books, signals and commands
already decided, trading state and symbol halts, realised P&L per day, the day's marks)
plus the latest quotes and the limits in force. :class:`EngineState` is the only code that
changes it: :meth:`EngineState.apply` with each recorded event, :meth:`EngineState.observe_tick`
with each validated quote (ticks are prices, not journaled), :meth:`EngineState.set_limits`
with an operator's ``set_limit`` and :meth:`EngineState.note_stop_denied` with a protective
close the gate refused. The decision code (:mod:`execution.core.decisions`,
:mod:`execution.core.commands`, :mod:`execution.core.stops`, :mod:`execution.core.valuation`) only reads it.
"""

from __future__ import annotations

import itertools
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, cast

from execution.core.broker import EXPIRED_PREFIX
from execution.core.limits import RiskLimits
from execution.core.positions import Book, Booking, book_of
from execution.core.risk import PriceWindow, RiskView
from execution.core.state import TERMINAL, CreationIndex, IllegalTransition, Order, OrderStatus, moved
from tickwave.contracts import (
    ControlCommand,
    Message,
    OrderAccepted,
    OrderCanceled,
    OrderDenied,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    RiskEvent,
    Tick,
)
from tickwave.contracts.core import mid_price
from tickwave.money import MONEY_CONTEXT, to_decimal

# MONEY_CONTEXT's operations, bound once: looking one up on the context costs ~60 ns (the exact sums run per fill).
_add: Final = MONEY_CONTEXT.add
_multiply: Final = MONEY_CONTEXT.multiply

logger = logging.getLogger(__name__)

RATE_WINDOW_MS: Final = 1_000
_ZERO: Final = Decimal(0)
# How far past the reconciliation's window ended orders stay in memory, and how far a signal's
# creation time may run ahead of its decision's (two hosts' clocks): see EngineState.retire.
RETIRE_MARGIN_MS: Final = 600_000
_ORDER_EVENTS: Final = frozenset({OrderAccepted, OrderRejected, OrderFilled, OrderCanceled})  # a broker's answers

# Risk event kinds that change state (the rest only inform).
TRADING_STATE: Final = "trading_state"
SYMBOL_HALTED: Final = "symbol_halted"
SYMBOL_RESUMED: Final = "symbol_resumed"
FLATTEN: Final = "flatten"
DAY_ROLLOVER: Final = "day_rollover"  # marks each position's unrealised P&L at the trading day's start


def book_fill(book: Book, order: Order, fill: OrderFilled) -> Booking:
    """Book ``fill`` of ``order`` on ``book``: the one rule for the engine's state and the fill's record."""
    quantity = to_decimal(fill.fill_lots)
    return book.book(quantity if order.side == "buy" else -quantity, to_decimal(fill.fill_price), fill.fill_id)


@dataclass
class EngineState:
    """What the engine knows; changed only by its own methods (the single mutator)."""

    limits: RiskLimits
    view: RiskView = field(default_factory=RiskView)
    orders: dict[str, Order] = field(default_factory=dict)
    decided_signals: dict[str, int] = field(default_factory=dict)  # signal id -> decided at (ms), in journal order
    applied_commands: set[str] = field(default_factory=set)
    books: dict[str, Book] = field(default_factory=dict)
    # What each booked fill did to its position (by fill_id): a redelivered Fill record gets the same figures.
    bookings: dict[str, Booking] = field(default_factory=dict)
    stop_denied_at_ms: dict[str, int] = field(default_factory=dict)  # protective closes denied, when (not journaled)
    # Realised P&L per trading day and quote currency (exact); converted only when valued.
    realized_by_day: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    # Unrealised P&L of each position (quote currency) at the start of ``marked_day``.
    day_marks: dict[str, Decimal] = field(default_factory=dict)
    marked_day: str = ""
    defects: list[str] = field(default_factory=list)
    # Ended orders created before this, their fills' bookings and the signals decided before it
    # were let go (see retire); 0: everything is kept.
    retired_before_ms: int = 0
    retired_orders: int = 0  # how many orders and decided signals were let go (the status counts them)
    retired_signals: int = 0
    # Bumped by every change the day's P&L depends on (the latest ticks, the books and realised
    # P&L, the day's marks), so a valuation is reused only while nothing it read changed.
    pnl_revision: int = 0
    # Bumped by the changes of those that are not ticks (a fill booked, the day's marks): the
    # day's P&L keeps what only they decide between two of them (see Valuation).
    books_revision: int = 0
    # Indexes of ``orders`` for a periodic reconciliation's window: by creation time, and the ids
    # of the orders not yet terminal. Kept by _put, the one writer of ``orders``.
    _created: CreationIndex = field(default_factory=CreationIndex, init=False, repr=False)
    _open_ids: set[str] = field(default_factory=set, init=False, repr=False)
    # A cache, not state (filled by a valuation, see book_ahead): fill id -> (the fill, books revision then,
    # the book after the fill, the booking).
    _ahead: dict[str, tuple[OrderFilled, int, Book, Booking]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # -----------------------------------------------------------------------------------
    # The writers
    # -----------------------------------------------------------------------------------

    def apply(self, event: Message) -> bool:
        """Apply one recorded event; return False when it changed nothing (a fill seen before, a defect).

        An illegal order transition is a defect: it is logged, kept in ``defects`` and the
        order is left as it was.
        """
        try:
            return self._apply(event)
        except IllegalTransition as exc:
            self.defects.append(str(exc))
            logger.error("defect: %s (event %s)", exc, type(event).__name__)
            return False

    def observe_tick(self, tick: Tick) -> None:
        """Keep the latest quote (a late tick does not replace a newer one) and the symbol's price window."""
        view, symbol, time_ms = self.view, tick.symbol, tick.time_ms
        previous = view.last_ticks.get(symbol)
        if previous is None or time_ms >= previous.time_ms:
            view.last_ticks[symbol] = tick
            self.pnl_revision += 1
        window = view.price_windows.get(symbol)
        if window is None:
            window = view.price_windows[symbol] = PriceWindow(self.limits.flash_crash_window_ms)
        window.update(time_ms, mid_price(tick.bid, tick.ask))

    def set_limits(self, limits: RiskLimits) -> None:
        """Put an operator's limits in force (until a restart: the command is not replayed)."""
        self.limits = limits

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
        if before_ms <= self.retired_before_ms:
            return 0
        self.retired_before_ms = before_ms
        orders, bookings = self.orders, self.bookings
        retired = self._created.retire(before_ms, lambda cid: orders[cid].is_terminal)
        for cid in retired:
            for fill_id in orders.pop(cid).fill_ids:
                bookings.pop(fill_id, None)
        decided = self.decided_signals
        old = [signal_id for signal_id, _ in itertools.takewhile(lambda item: item[1] < before_ms, decided.items())]
        for signal_id in old:
            del decided[signal_id]
        self.retired_orders += len(retired)
        self.retired_signals += len(old)
        return len(retired)

    def note_stop_denied(self, symbol: str, now_ms: int) -> None:
        """Remember that a protective close of ``symbol`` was denied at ``now_ms`` (retried a second later)."""
        self.stop_denied_at_ms[symbol] = now_ms

    def _apply(self, event: Message) -> bool:
        # Exact types (contract messages are never subclassed): ~30 ns a test against ~150 ns for an
        # isinstance that misses, and an event passes up to six of them (a Fill record: all).
        kind = type(event)
        if kind is OrderSubmitted:
            event = cast(OrderSubmitted, event)
            self.decided_signals.setdefault(event.signal_id, event.event_at_ms)
            self._put(
                Order(
                    client_order_id=event.client_order_id,
                    signal_id=event.signal_id,
                    symbol=event.symbol,
                    side=event.side,
                    quantity_lots=event.quantity_lots,
                    model_id=event.model_id,
                    model_version=event.model_version,
                    created_at_ms=event.event_at_ms,
                    status=OrderStatus.SUBMITTED,
                )
            )
            self._add_pending(event.symbol, event.side, to_decimal(event.quantity_lots))
            times = self.view.order_times_ms
            times.append(event.event_at_ms)
            while times and times[0] <= event.event_at_ms - RATE_WINDOW_MS:
                times.popleft()
        elif kind in _ORDER_EVENTS:
            return self._apply_order_event(cast("OrderAccepted | OrderRejected | OrderFilled | OrderCanceled", event))
        elif kind is OrderDenied:
            denied = cast(OrderDenied, event)
            self.decided_signals.setdefault(denied.signal_id, denied.event_at_ms)
        elif kind is RiskEvent:
            self._apply_risk_event(cast(RiskEvent, event))
        elif kind is ControlCommand:
            self.applied_commands.add(cast(ControlCommand, event).command_id)
        return True

    def _apply_order_event(self, event: OrderAccepted | OrderRejected | OrderFilled | OrderCanceled) -> bool:
        order = self.orders.get(event.client_order_id)
        if order is None:
            raise IllegalTransition(f"order {event.client_order_id}: {type(event).__name__} for an unknown order")
        if type(event) is OrderFilled:  # exact types, the answers in order of frequency (see _apply)
            if event.fill_id in order.fill_ids:
                return False  # the same execution reported twice (redelivery, reconciliation)
            status = OrderStatus.FILLED if event.is_final else OrderStatus.PARTIALLY_FILLED
            self._put(moved(order, status, event.cumulative_lots, None, event.fill_id))
            self._book_fill(order, event)
            self._add_pending(order.symbol, order.side, -to_decimal(event.fill_lots))
            self.view.consecutive_rejects = 0
        elif type(event) is OrderAccepted:
            self._put(moved(order, OrderStatus.ACCEPTED, None, event.broker_order_id))
            self.view.consecutive_rejects = 0
        elif type(event) is OrderRejected:
            self._put(moved(order, OrderStatus.REJECTED))
            self._release_rest(order)
            self.view.consecutive_rejects += 1
        else:
            expired = cast(OrderCanceled, event).reason.startswith(EXPIRED_PREFIX)
            self._put(moved(order, OrderStatus.EXPIRED if expired else OrderStatus.CANCELED))
            self._release_rest(order)
        return True

    def _put(self, order: Order) -> None:
        """Store ``order`` (new or moved) and keep the reconciliation indexes in step."""
        cid = order.client_order_id
        previous = self.orders.get(cid)
        if previous is None or previous.created_at_ms != order.created_at_ms:
            if previous is not None:
                self._created.remove(previous.created_at_ms, cid)
            self._created.add(order.created_at_ms, cid)
        self.orders[cid] = order
        if order.status in TERMINAL:
            self._open_ids.discard(cid)
        else:
            self._open_ids.add(cid)

    def _add_pending(self, symbol: str, side: str, lots: Decimal) -> None:
        signed = lots if side == "buy" else -lots
        self.view.pending[symbol] = self.view.pending.get(symbol, _ZERO) + signed

    def _release_rest(self, order: Order) -> None:
        """An order ended without filling the rest: it no longer counts towards exposure."""
        rest = to_decimal(order.quantity_lots) - to_decimal(order.filled_lots)
        if rest > 0:
            self._add_pending(order.symbol, order.side, -rest)

    def _apply_risk_event(self, event: RiskEvent) -> None:
        if event.kind == DAY_ROLLOVER:
            mark = json.loads(event.detail)
            self.marked_day = mark["trading_day"]
            self.day_marks = {symbol: Decimal(amount) for symbol, amount in mark["marks"].items()}
            self.pnl_revision += 1
            self.books_revision += 1
        elif event.kind == TRADING_STATE:
            self.view.trading_state = event.trading_state
            if event.trading_state == "ACTIVE":
                self.view.consecutive_rejects = 0
        elif event.kind == SYMBOL_HALTED:
            self.view.halted_symbols.add(event.symbol)
        elif event.kind == SYMBOL_RESUMED:
            self.view.halted_symbols.discard(event.symbol)

    def book_ahead(self, fill: OrderFilled, book: Book, booking: Booking) -> None:
        """Keep a fill booked ahead of its apply on a copy of its symbol's book (``book``: the copy after it).

        A cache, not state: :meth:`_book_fill` takes it only for that very event and while no
        fill was booked since it was offered (the symbol's book is then the one copied, so
        booking the fill again would give exactly ``booking`` and ``book``), else books the
        fill itself. Only the latest offers are kept.
        """
        if len(self._ahead) > 64:
            self._ahead.clear()
        self._ahead[fill.fill_id] = (fill, self.books_revision, book, booking)

    def _book_fill(self, order: Order, fill: OrderFilled) -> None:
        ahead = self._ahead.pop(fill.fill_id, None)
        book = book_of(self.books, order.symbol)
        if ahead is not None and ahead[0] is fill and ahead[1] == self.books_revision:
            book.take(ahead[2])
            booking = ahead[3]
        else:
            booking = book_fill(book, order, fill)
        self.pnl_revision += 1
        self.books_revision += 1
        self.bookings[fill.fill_id] = booking
        realized = booking.realized
        spec = self.limits.instruments.get(order.symbol)
        if realized and spec is not None:
            day = self.limits.market.trading_day(fill.event_at_ms).isoformat()
            by_currency = self.realized_by_day.setdefault(day, {})
            amount = _multiply(realized, to_decimal(spec.contract_size))
            by_currency[spec.quote] = _add(by_currency.get(spec.quote, _ZERO), amount)
        elif realized:
            self.defects.append(f"no instrument spec for {order.symbol}: realised P&L {realized} not booked")
        self.view.positions[order.symbol] = book.lots

    # -----------------------------------------------------------------------------------
    # Queries
    # -----------------------------------------------------------------------------------

    def working_orders(self) -> list[Order]:
        """Return the orders the broker may still fill."""
        return [order for order in self.orders.values() if order.is_working]

    def orders_in_window(self, since_ms: int) -> tuple[int, dict[str, Order]]:
        """Return a reconciliation window's start and its orders, in time order.

        The window starts at the earlier of ``since_ms`` and the oldest order not yet terminal
        (so a working order's late fill is still compared); O(window + working orders).
        """
        start_ms = self.window_start(since_ms)
        return start_ms, {cid: self.orders[cid] for cid in self._created.since(start_ms)}

    def window_start(self, since_ms: int) -> int:
        """Return where a reconciliation's window starts: ``since_ms``, or the oldest order not yet terminal."""
        return min([since_ms, *(self.orders[cid].created_at_ms for cid in self._open_ids)])
