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
from tickwave_core import fill_figures

from execution.core.day_screen import DayParts, FloatDay
from execution.core.engine_state import EngineState, book_fill
from execution.core.limits import RiskLimits
from execution.core.positions import Book, Booking
from tickwave.contracts import Fill, Message, OrderFilled, Tick
from tickwave.contracts.core import mid_price
from tickwave.instruments import Instrument, conversion_route, convert, rate_symbols
from tickwave.market import MarketCalendar
from tickwave.money import MONEY_CONTEXT, to_decimal

# MONEY_CONTEXT's operations, bound once: looking one up on the context costs ~60 ns (the exact sums run per fill).
_add: Final = MONEY_CONTEXT.add
_multiply: Final = MONEY_CONTEXT.multiply
_subtract: Final = MONEY_CONTEXT.subtract

_ZERO: Final = Decimal(0)
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
        # Each open leg valued at a tick: symbol -> (the tick, the units and cost, units x mid - cost); kept across
        # parts while its units and cost are the same objects (a fill works out only its own book's again).
        self._leg_values: dict[str, tuple[Tick, Decimal, Decimal, Decimal]] = {}
        # Each open position's (units, cost), by symbol, with the book (and its revision) and the instrument they
        # were worked out for: a fill changes one book, so the parts work out that one again.
        self._units_costs: dict[str, tuple[Book, int, Instrument, Decimal, Decimal]] = {}
        # Each currency's sum as last converted, by limits: currency -> (the symbols whose mids convert reads
        # (rate_symbols'), their latest ticks then, the sum, the converted sum). A tick of another symbol
        # leaves a currency's conversion as it was.
        self._conversions: (
            tuple[RiskLimits, dict[str, tuple[tuple[str, ...], tuple[Tick | None, ...], Decimal, Decimal | None]]]
            | None
        ) = None
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

    def unrealized_now(self, limits: RiskLimits) -> dict[str, Decimal]:
        """Unrealised P&L of every open position at the latest mid, in its quote currency (exact)."""
        amounts: dict[str, Decimal] = {}
        last_ticks, instruments = self.state.view.last_ticks, limits.instruments
        for symbol, book in self.state.books.items():
            if not book.lots:
                continue
            tick, spec = last_ticks.get(symbol), instruments.get(symbol)
            if tick is None or spec is None:
                continue
            amounts[symbol] = _multiply(
                book.unrealized(to_decimal(mid_price(tick.bid, tick.ask))), to_decimal(spec.contract_size)
            )
        return amounts

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

        A position's open P&L at ``mid`` is ``units x mid - cost`` (units: lots x contract size;
        cost: the entry value x contract size), the same exact amount as :meth:`unrealized_now`'s
        sum over its entries. What a tick cannot change (per currency: the day's realised P&L
        less the day's marks and the open positions' cost; each position's units) is summed
        once per change of the books (:meth:`_day_parts`), and a leg's value is kept until its
        symbol's latest tick is another one, so a tick values one product (its own symbol's
        open position) and converts each currency's sum once, at the latest mids. Every sum is
        exact: the result equals summing the parts the long way, in any order.
        """
        state = self.state
        last_ticks = state.view.last_ticks
        total = _ZERO
        account = limits.account_currency
        parts = self._day_parts(limits, day)
        valued = self._leg_values
        for currency, (constant, legs) in parts.items():
            amount = constant
            for symbol, units, cost in legs:
                tick = last_ticks.get(symbol)
                if tick is None:  # no price yet: no open P&L (as unrealized_now)
                    continue
                known = valued.get(symbol)
                if known is not None and known[0] is tick and known[1] is units and known[2] is cost:
                    value = known[3]
                else:
                    value = _subtract(_multiply(units, to_decimal(mid_price(tick.bid, tick.ask))), cost)
                    valued[symbol] = (tick, units, cost, value)
                amount = _add(amount, value)
            if not amount:
                continue
            if currency != account:
                converted = self._converted(amount, currency, limits)
                if converted is None:
                    return None
                amount = converted
            total = _add(total, amount)
        return total

    def _converted(self, amount: Decimal, currency: str, limits: RiskLimits) -> Decimal | None:
        """Return :func:`convert` of ``amount`` to the account currency at the latest mids.

        Reused while the amount and the latest ticks of :func:`rate_symbols` are the same (no other mid changes it).
        """
        view = self.state.view
        known = self._conversions
        if known is None or known[0] is not limits:
            known = self._conversions = (limits, {})
        by_currency = known[1]
        memo = by_currency.get(currency)
        if memo is None:
            symbols = rate_symbols(currency, limits.account_currency, limits.instruments)
        else:
            symbols = memo[0]
        rates = tuple(map(view.last_ticks.get, symbols))
        if memo is not None and memo[1] == rates and not memo[2].compare_total(amount):  # the same digits and exponent
            return memo[3]
        mids = {
            symbol: mid_price(tick.bid, tick.ask)
            for symbol in symbols
            if (tick := view.last_ticks.get(symbol)) is not None
        }
        converted = convert(amount, currency, limits.account_currency, limits.instruments, mids)
        by_currency[currency] = (symbols, rates, amount, converted)
        return converted

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
        parts: DayParts = {
            currency: (amount, []) for currency, amount in state.realized_by_day.get(day, _NO_AMOUNTS).items()
        }
        if day == state.marked_day:  # before the day's mark, the open positions have not changed the day
            instruments = limits.instruments
            for symbol, mark in state.day_marks.items():
                quote = instruments[symbol].quote
                constant, legs = parts.get(quote, (_ZERO, []))
                parts[quote] = (_subtract(constant, mark), legs)
            known_legs = self._units_costs
            for symbol, book in state.books.items():
                spec = instruments.get(symbol)
                if not book.lots or spec is None:
                    continue
                leg = known_legs.get(symbol)
                if leg is not None and leg[0] is book and leg[1] == book.revision and leg[2] is spec:
                    units, cost = leg[3], leg[4]
                else:
                    contract = to_decimal(spec.contract_size)
                    units = _multiply(book.lots, contract)
                    cost = _multiply(book.entry_value(), contract)
                    known_legs[symbol] = (book, book.revision, spec, units, cost)
                constant, legs = parts.get(spec.quote, (_ZERO, []))
                legs.append((symbol, units, cost))
                parts[spec.quote] = (constant, legs)
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
        mids = state.view.leg_values.mids(state.view, limits) if spec.quote != limits.account_currency else {}
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
