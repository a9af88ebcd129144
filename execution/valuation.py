"""P&L valuation of the engine's state: the day's P&L, each fill's booked figures, the status summary.

Read-only over :class:`~execution.engine_state.EngineState`; the one thing it keeps is a
cache (the day's P&L of the latest state revision), never state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from msgspec.structs import replace as replace_struct

from execution.engine_state import EngineState, book_fill
from execution.limits import RiskLimits
from execution.positions import Book, Booking
from execution.risk import mids_of
from tickwave.contracts import Fill, Message, OrderFilled
from tickwave.instruments import Instrument, convert
from tickwave.money import MONEY_CONTEXT, to_decimal, within_places


class Valuation:
    """Values an engine state in the account currency (the risk view's source of the day's P&L)."""

    def __init__(self, state: EngineState) -> None:
        self.state = state
        # The day's P&L is valued at most once per change of what it depends on: the memo holds
        # the trading day, the state's P&L revision and the limits it was valued with.
        self._memo: tuple[str, int, RiskLimits, Decimal | None] | None = None

    def unrealized_now(self, limits: RiskLimits) -> dict[str, Decimal]:
        """Unrealised P&L of every open position at the latest mid, in its quote currency (exact)."""
        amounts: dict[str, Decimal] = {}
        last_ticks = self.state.view.last_ticks
        for symbol, book in self.state.books.items():
            tick, spec = last_ticks.get(symbol), limits.instruments.get(symbol)
            if book.lots == 0 or tick is None or spec is None:
                continue
            amounts[symbol] = MONEY_CONTEXT.multiply(
                book.unrealized(to_decimal(tick.mid)), to_decimal(spec.contract_size)
            )
        return amounts

    def daily_pnl(self, limits: RiskLimits, now_ms: int) -> Decimal | None:
        """Return the trading day's P&L in the account currency, or None when a currency has no rate.

        Day P&L = realised today + (unrealised now - unrealised at the day's start, as marked
        at the rollover); each currency's sum is converted once, at the latest mids.
        """
        day = limits.market.trading_day(now_ms).isoformat()
        memo = self._memo
        revision = self.state.pnl_revision
        # New limits (an operator's set_limit) are valued afresh: the memo holds the limits it was valued with.
        if memo is not None and memo[0] == day and memo[1] == revision and memo[2] is limits:
            return memo[3]
        total = self._value_day(limits, day)
        self._memo = (day, revision, limits, total)
        return total

    def _value_day(self, limits: RiskLimits, day: str) -> Decimal | None:
        """Value trading day ``day``'s P&L now (see :meth:`daily_pnl`)."""
        state = self.state
        by_currency = dict(state.realized_by_day.get(day, {}))
        unrealized = self.unrealized_now(limits)
        marks = state.day_marks if day == state.marked_day else unrealized  # before the day's mark: no change yet
        for symbol in sorted(unrealized.keys() | marks.keys()):
            change = MONEY_CONTEXT.subtract(unrealized.get(symbol, Decimal(0)), marks.get(symbol, Decimal(0)))
            quote = limits.instruments[symbol].quote
            by_currency[quote] = MONEY_CONTEXT.add(by_currency.get(quote, Decimal(0)), change)
        total = Decimal(0)
        mids = mids_of(state.view)
        for currency, amount in sorted(by_currency.items()):
            if amount == 0:
                continue
            converted = convert(amount, currency, limits.account_currency, limits.instruments, mids)
            if converted is None:
                return None
            total = MONEY_CONTEXT.add(total, converted)
        return total

    def booked(self, events: Sequence[Message]) -> list[Message]:
        """Return ``events`` with each ``Fill`` record carrying what its execution does to the position.

        Called on a group of broker events before it is journaled: each ``OrderFilled`` is
        booked, in order, on a copy of its symbol's book (with :func:`book_fill`, exactly as
        the state will book it), and the ``Fill`` record of that execution gets the figures
        (see :class:`~tickwave.contracts.Fill`); a fill booked before gets its recorded
        figures. The realised P&L is also converted to the account currency at the latest mids.
        """
        if not any(type(event) is Fill for event in events):
            return list(events)
        state = self.state
        previews: dict[str, Book] = {}
        bookings: dict[str, Booking] = {}
        for event in events:
            if type(event) is not OrderFilled:
                continue
            order = state.orders.get(event.client_order_id)
            if order is None or event.fill_id in order.fill_ids or event.fill_id in bookings:
                continue
            book = previews.get(order.symbol)
            if book is None:
                book = previews[order.symbol] = state.books.get(order.symbol, Book()).copy()
            bookings[event.fill_id] = book_fill(book, order, event)
        return [self._with_booking(event, bookings) if isinstance(event, Fill) else event for event in events]

    def _with_booking(self, fill: Fill, bookings: dict[str, Booking]) -> Fill:
        state, limits = self.state, self.state.limits
        booking = bookings.get(fill.fill_id) or state.bookings.get(fill.fill_id)
        spec = limits.instruments.get(fill.symbol)
        if booking is None or spec is None:
            return fill
        return with_booking(fill, booking, spec, limits.account_currency, limits.instruments, mids_of(state.view))

    def status(self, instance_id: str, now_ms: int) -> dict[str, Any]:
        """Return a plain summary for ``tickwave execution status``."""
        state = self.state
        view = state.view
        return {
            "instance_id": instance_id,
            "trading_state": view.trading_state,
            "halted_symbols": sorted(view.halted_symbols),
            "positions_lots": {symbol: str(lots) for symbol, lots in sorted(view.positions.items()) if lots},
            "orders": len(state.orders),
            "working_orders": len(state.working_orders()),
            "signals_decided": len(state.decided_signals),
            "daily_pnl": _money_text(self.daily_pnl(state.limits, now_ms)),
            "account_currency": state.limits.account_currency,
            "consecutive_rejects": view.consecutive_rejects,
            "defects": len(state.defects),
        }


def with_booking(
    fill: Fill,
    booking: Booking,
    spec: Instrument,
    account_currency: str,
    instruments: Mapping[str, Instrument],
    mids: Mapping[str, float],
) -> Fill:
    """Return the ``Fill`` record carrying ``booking`` (see :class:`~tickwave.contracts.Fill`).

    The realised P&L is converted to the account currency at ``mids`` (the engine: its latest
    mids; a backfill of fills booked later: the 1-minute bar mids at each fill's time).
    """
    # Amounts at the warehouse's scale (18 decimals: a no-op for prices of up to 16 decimals), so
    # the record and its warehouse row hold the same figures; a conversion (a division) rounds there.
    realized = within_places(MONEY_CONTEXT.multiply(booking.realized, to_decimal(spec.contract_size)))
    account: Decimal | None = Decimal(0)
    if realized:
        converted = convert(realized, spec.quote, account_currency, instruments, mids)
        account = None if converted is None else within_places(converted)
    return replace_struct(
        fill, position_before_lots=booking.position_before, position_after_lots=booking.position_after,
        entry_value_after=within_places(booking.entry_value_after), realized_pnl_quote=realized,
        realized_pnl_account=account,
        round_trip_id=booking.round_trip_id, opens_round_trip_id=booking.opens_round_trip_id,
    )  # fmt: skip


def _money_text(amount: Decimal | None) -> str:
    return "unknown (a conversion rate is missing)" if amount is None else f"{amount:.2f}"
