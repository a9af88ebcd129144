"""P&L valuation of the engine's state: the day's P&L, each fill's booked figures, the status summary.

Read-only over :class:`~execution.core.engine_state.EngineState`; the one thing it keeps is a
cache (the day's P&L of the latest state revision), never state.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any, Final

from msgspec.structs import replace as replace_struct
from tickwave_core import DayParts, fill_figures

from execution.core.day_screen import FloatDay
from execution.core.engine_state import EngineState, book_fill
from execution.core.limits import RiskLimits
from execution.core.positions import Book, Booking
from execution.core.risk import mids_of
from tickwave.contracts import Fill, Message, OrderFilled
from tickwave.contracts.core import mid_price
from tickwave.instruments import Instrument, conversion_route, rate_symbols
from tickwave.market import MarketCalendar
from tickwave.money import MONEY_CONTEXT

# MONEY_CONTEXT's product, bound once: looking one up on the context costs ~60 ns.
_multiply: Final = MONEY_CONTEXT.multiply

_NO_AMOUNTS: Final[dict[str, Decimal]] = {}


class Valuation:
    """Values an engine state in the account currency (the risk view's source of the day's P&L)."""

    def __init__(self, state: EngineState) -> None:
        self.state = state
        # The day's P&L is valued at most once per change of what it depends on: the memo holds
        # the trading day, the state's P&L revision and the limits it was valued with.
        self._memo: tuple[str, int, RiskLimits, Decimal | None] | None = None
        # The last instant asked for, the calendar asked, its trading day and the day's ISO text.
        self._day_text: tuple[int, MarketCalendar, date, str] | None = None
        # What only the books decide of the day's P&L, by (day, books revision, limits): see _day_parts.
        self._parts: tuple[tuple[str, int, RiskLimits], DayParts] | None = None
        # Each quote currency's rate symbols (rate_symbols'), by limits.
        self._rate_symbols: tuple[RiskLimits, dict[str, tuple[str, ...]]] | None = None
        self._float_day = FloatDay(state)  # the day's P&L in floats, for is_above's first answer
        self._screened: tuple[int, str, RiskLimits, Decimal, int] | None = None  # the last question found clear

    def is_above(self, limits: RiskLimits, now_ms: int, floor: Decimal) -> bool:
        """Return what ``daily_pnl(limits, now_ms)`` (not None) ``> floor`` would: from :class:`FloatDay` when it can.

        The loss checks ask on every tick, fill and signal; the day is mostly far above its limit.
        """
        state = self.state
        asked = (state.pnl_revision, self.trading_day(limits, now_ms), limits, floor, state.books_revision)
        if self._screened == asked:  # limits: the same object (compared by identity first) or equal ones
            return True
        float_day = self._float_day
        if not float_day.is_current(asked[1], limits):
            float_day.take(self._day_parts(limits, asked[1]), asked[1], limits)
        if float_day.clears(limits, floor):
            self._screened = asked
            return True
        return (pnl := self.daily_pnl(limits, now_ms)) is not None and pnl > floor

    def is_above_after(self, fill: OrderFilled, limits: RiskLimits, floor: Decimal) -> bool:
        """:meth:`is_above` at ``fill``'s time, just after it was booked: from the answer before it if only it moved."""
        state, screened, day = self.state, self._screened, self.trading_day(limits, fill.event_at_ms)
        self._float_day.carry(fill, day, limits)
        if (
            screened is not None
            and screened[2] is limits
            and screened[3] == floor
            and screened[0] + 1 == state.pnl_revision
            and screened[4] + 1 == state.books_revision  # it alone
            and screened[1] == state.marked_day == day
            and self._float_day.clears_after(fill, limits, floor)
        ):
            self._screened = (state.pnl_revision, screened[1], limits, floor, state.books_revision)
            return True
        return self.is_above(limits, fill.event_at_ms, floor)

    def unrealized_now(self) -> dict[str, Decimal]:
        """Unrealised P&L of every open position at the latest mid, in its quote currency (exact; the core's)."""
        return self.state.unrealized_now()

    def daily_pnl(self, limits: RiskLimits, now_ms: int) -> Decimal | None:
        """Return the trading day's P&L in the account currency, or None when a currency has no rate.

        Day P&L = realised today + (unrealised now - unrealised at the day's start, as marked
        at the rollover); each currency's sum is converted once, at the latest mids.
        """
        day = self.trading_day(limits, now_ms)
        memo = self._memo
        revision = self.state.pnl_revision
        # New limits (an operator's set_limit) are valued afresh: the memo holds the limits it was valued with.
        if memo is not None and memo[1] == revision and memo[0] == day and memo[2] is limits:
            return memo[3]
        total = self._value_day(limits, day)
        self._memo = (day, revision, limits, total)
        return total

    def trading_day(self, limits: RiskLimits, now_ms: int) -> str:
        """Return the trading day of ``now_ms`` as ISO text (the key of the realised P&L and the day's marks)."""
        known = self._day_text
        if known is not None and known[0] == now_ms and known[1] is limits.market:  # a tick's breakers ask twice
            return known[3]
        day = limits.market.trading_day(now_ms)
        text = known[3] if known is not None and known[2] == day else day.isoformat()
        self._day_text = (now_ms, limits.market, day, text)
        return text

    def _value_day(self, limits: RiskLimits, day: str) -> Decimal | None:
        """Value trading day ``day``'s P&L now (see :meth:`daily_pnl`).

        What a tick cannot change (:meth:`_day_parts`) is built once per change of the books; the
        core values each open leg at its symbol's latest mid (``units x mid - cost``, the same exact
        amount as :meth:`unrealized_now`'s sum over its entries) and converts each currency's sum
        once, at the latest mids (``valuation.rs``). Every sum is exact.
        """
        last_ticks = self.state.view.last_ticks
        account = limits.account_currency
        parts = self._day_parts(limits, day)
        mids: dict[str, float] = {}
        for symbol in parts.symbols():
            tick = last_ticks.get(symbol)
            if tick is not None:  # no price yet: no open P&L (as unrealized_now)
                mids[symbol] = mid_price(tick.bid, tick.ask)
        routes: dict[str, tuple[tuple[float, bool], ...] | None] = {}
        for currency in parts.currencies():
            if currency != account:
                rate_mids = {}
                for symbol in self._rate_symbols_of(currency, limits):
                    tick = last_ticks.get(symbol)
                    if tick is not None:
                        rate_mids[symbol] = mid_price(tick.bid, tick.ask)
                routes[currency] = conversion_route(currency, account, limits.instruments, rate_mids)
        return parts.value(account, mids, routes)

    def _rate_symbols_of(self, currency: str, limits: RiskLimits) -> tuple[str, ...]:
        """Return :func:`rate_symbols` from ``currency`` to the account currency (kept per limits)."""
        known = self._rate_symbols
        if known is None or known[0] is not limits:
            known = self._rate_symbols = (limits, {})
        symbols = known[1].get(currency)
        if symbols is None:
            symbols = known[1][currency] = rate_symbols(currency, limits.account_currency, limits.instruments)
        return symbols

    def _day_parts(self, limits: RiskLimits, day: str) -> DayParts:
        """Per quote currency: the day's realised P&L less its marks and costs, and each open position's units and cost.

        Kept until a fill is booked, the day is marked or the limits change (the key).
        """
        state = self.state
        key = (day, state.books_revision, limits)
        known = self._parts
        # The limits by identity: a compiled tuple comparison calls the dataclass's __eq__ on them.
        if known is not None and known[0][2] is limits and known[0][1] == key[1] and known[0][0] == day:
            return known[1]
        parts = DayParts()
        for currency, amount in state.realized_by_day.get(day, _NO_AMOUNTS).items():
            parts.set_realized(currency, amount)
        if day == state.marked_day:  # before the day's mark, the open positions have not changed the day
            instruments = limits.instruments
            for symbol, mark in state.day_marks.items():
                parts.subtract_mark(instruments[symbol].quote, mark)
            for symbol, book in state.books.items():
                spec = instruments.get(symbol)
                if book.lots and spec is not None:
                    parts.add_position(spec.quote, symbol, book, spec.contract_size)
        self._parts = (key, parts)
        return parts

    def booked(self, events: Sequence[Message]) -> list[Message]:
        """Return ``events`` with each ``Fill`` record carrying what its execution does to the position.

        Called on a group of broker events before it is journaled: each ``OrderFilled`` is
        booked, in order, on a copy of its symbol's book (with :func:`book_fill`, exactly as
        the state will book it), and the ``Fill`` record of that execution gets the figures
        (see :class:`~tickwave.contracts.Fill`); a fill booked before gets its recorded
        figures. The realised P&L is also converted to the account currency at the latest mids.
        A symbol's only fill of the group is offered to the state (:meth:`EngineState.book_ahead`),
        so the state books it once, not twice.
        """
        if Fill not in map(type, events):  # exact types (never subclassed), compared in C
            return list(events)
        state = self.state
        previews: dict[str, Book] = {}
        bookings: dict[str, Booking] = {}
        fills_of: dict[str, list[OrderFilled]] = {}  # symbol -> the fills booked on its preview
        for event in events:
            if type(event) is not OrderFilled:
                continue
            order = state.orders.get(event.client_order_id)
            if order is None or event.fill_id in order.fill_ids or event.fill_id in bookings:
                continue
            book = previews.get(order.symbol)
            if book is None:
                held = state.books.get(order.symbol)
                book = previews[order.symbol] = Book() if held is None else held.copy()
            bookings[event.fill_id] = book_fill(book, order, event)
            fills_of.setdefault(order.symbol, []).append(event)
        for symbol, fills in fills_of.items():
            if len(fills) == 1:  # the preview is then the book just after that fill
                state.book_ahead(fills[0], previews[symbol], bookings[fills[0].fill_id])
        return [self._with_booking(event, bookings) if type(event) is Fill else event for event in events]

    def _with_booking(self, fill: Fill, bookings: dict[str, Booking]) -> Fill:
        state, limits = self.state, self.state.limits
        booking = bookings.get(fill.fill_id) or state.bookings.get(fill.fill_id)
        spec = limits.instruments.get(fill.symbol)
        if booking is None or spec is None:
            return fill
        # Only a conversion reads mids: a fill quoted in the account currency needs none.
        mids = mids_of(state.view) if spec.quote != limits.account_currency else {}
        return with_booking(fill, booking, spec, limits.account_currency, limits.instruments, mids)


def status_summary(valuation: Valuation, instance_id: str, now_ms: int) -> dict[str, Any]:
    """Return a plain summary of the engine state ``valuation`` values, for ``tickwave execution status``."""
    state = valuation.state
    view = state.view
    return {
        "instance_id": instance_id,
        "trading_state": view.trading_state,
        "halted_symbols": sorted(view.halted_symbols),
        "positions_lots": {symbol: str(lots) for symbol, lots in sorted(view.positions.items()) if lots},
        "orders": len(state.orders) + state.retired_orders,  # those let go from memory too
        "working_orders": len(state.working_orders()),
        "signals_decided": len(state.decided_signals) + state.retired_signals,
        "daily_pnl": _money_text(valuation.daily_pnl(state.limits, now_ms)),
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
    route = conversion_route(spec.quote, account_currency, instruments, mids)
    realized, account, entry_value = fill_figures(
        booking.realized, booking.entry_value_after, spec.contract_size, route
    )
    return replace_struct(
        fill,
        position_before_lots=booking.position_before,
        position_after_lots=booking.position_after,
        entry_value_after=entry_value,
        realized_pnl_quote=realized,
        realized_pnl_account=account,
        round_trip_id=booking.round_trip_id,
        opens_round_trip_id=booking.opens_round_trip_id,
    )


def _money_text(amount: Decimal | None) -> str:
    return "unknown (a conversion rate is missing)" if amount is None else f"{amount:.2f}"
