"""The loss checks' first answer: the day's P&L summed in floats, with a bound on the error.

:meth:`~execution.core.valuation.Valuation.is_above` asks it before the exact sums: most ticks,
fills and signals find the day far above its limit, and a float sum with its error bound
tells so for a fraction of the exact Decimal sums' cost. Only a sum within its bound of
the floor goes to the exact valuation. The sums and their bounds are the core's
(``day_screen.rs``); this facade finds what they read (the latest mids, the rates, a fill's
figures) and keeps the key the parts are current for.
"""

from __future__ import annotations

from decimal import Decimal

from tickwave_core import DayParts, FloatScreen

from execution.core.engine_state import EngineState
from execution.core.limits import RiskLimits
from execution.core.risk import float_rate
from tickwave.contracts import OrderFilled, Tick
from tickwave.contracts.core import mid_price
from tickwave.instruments import rate_symbols


class FloatDay:
    """The day's P&L summed in floats, with a bound on the error (:meth:`Valuation.is_above`'s first answer).

    Its state is a cache: the day's parts in floats (taken from the exact parts after a rollover,
    a change of limits or a fill it did not see; else carried across each fill), each figure's
    float, and each currency's rate at the latest mids.
    """

    def __init__(self, state: EngineState) -> None:
        self.state = state
        # Per quote currency: the day's parts in floats and the drift, a bound on the error the fills
        # carried into them added (the core's); current for (day, books revision, limits) only.
        self._screen = FloatScreen()
        self._current: tuple[str, int, RiskLimits] | None = None
        # As Valuation._conversions: currency -> (the rate symbols, their latest ticks then, the rate).
        self._factors: (
            tuple[RiskLimits, dict[str, tuple[tuple[str, ...], tuple[Tick | None, ...], float | None]]] | None
        ) = None
        self._floor_float: tuple[Decimal, float] | None = None  # the last floor asked and its float

    @property
    def cleared(self) -> tuple[float, float]:
        """Below the exact day's P&L at the last question found clear: ``(estimate - error, error)``."""
        return self._screen.cleared

    def is_current(self, day: str, limits: RiskLimits) -> bool:
        """Return True when the parts are the day's with the books as they are and ``limits``."""
        return self._current_at(day, limits, self.state.books_revision)

    def _current_at(self, day: str, limits: RiskLimits, books_revision: int) -> bool:
        current = self._current
        return current is not None and current[2] is limits and current[1] == books_revision and current[0] == day

    def take(self, parts: DayParts, day: str, limits: RiskLimits) -> None:
        """Take ``parts`` (:meth:`Valuation._day_parts` of ``day`` with the books as they are) in floats."""
        self._screen.take(parts)
        self._current = (day, self.state.books_revision, limits)

    def carry(self, fill: OrderFilled, day: str, limits: RiskLimits) -> None:
        """Keep the parts current across ``fill``, booked just now, when they were current just before it.

        The core carries the leg (units read back from the booking, u x p more cost) and adds the
        rounding of the carried cost to the currency's error bound (``FloatScreen.carry``).
        """
        state = self.state
        if not self._current_at(day, limits, state.books_revision - 1) or state.marked_day != day:
            return  # not current before the fill (or the day's legs are not counted yet): taken afresh
        symbol = fill.symbol  # each read of a struct's field is a Python attribute lookup
        spec, booking = limits.instruments.get(symbol), state.bookings.get(fill.fill_id)
        if spec is None or booking is None or symbol not in state.view.last_ticks:  # a leg without a mid counts none
            return
        contract, after = spec.contract_size, booking.position_after
        traded = fill.fill_lots * contract * fill.fill_price
        if after < booking.position_before:
            traded = -traded
        self._screen.carry(spec.quote, symbol, float(after) * contract, traded)
        self._current = (day, state.books_revision, limits)

    def clears(self, limits: RiskLimits, floor: Decimal) -> bool:
        """Return True when the sum of the parts is above ``floor`` by more than its error bound (False: unsure)."""
        return self._screen.clears(self.value(limits), self._float(floor))

    def clears_after(self, fill: OrderFilled, limits: RiskLimits, floor: Decimal) -> bool:
        """Return True when the day, which cleared ``floor`` last (``cleared``), clears it still after ``fill`` alone.

        At the same mids, booking u units at price p moves the day's P&L by exactly u x (mid - p)
        in the quote currency, whatever the book held: u x p paid, a position worth u x mid more.
        The move's float errs by 2**-40 of u x (mid + p) at most (each float within 2**-53 of its
        decimal; the difference's error is relative to the mid and the price, not to their gap), and
        the sum's conversion by 28 digits of the terms (``ESTIMATE_ERROR`` of the bound kept).
        """
        spec, tick = limits.instruments.get(fill.symbol), self.state.view.last_ticks.get(fill.symbol)
        if spec is None or tick is None:  # no leg valued: the sums decide
            return False
        rate = 1.0 if spec.quote == limits.account_currency else self._factor(spec.quote, limits)
        if rate is None:
            return False
        units = fill.fill_lots * spec.contract_size * rate
        return self._screen.clears_after(units, mid_price(tick.bid, tick.ask), fill.fill_price, self._float(floor))

    def _float(self, floor: Decimal) -> float:
        # The floor as a float (kept for the last floor asked); the core raises it by that float's own rounding.
        floors = self._floor_float
        if floors is None or floors[0] != floor:
            floors = self._floor_float = (floor, float(floor))
        return floors[1]

    def value(self, limits: RiskLimits) -> tuple[float, float] | None:
        """Return :meth:`Valuation._value_day`'s sum of the parts in floats and a bound on its error (None: no rate).

        The same parts (:meth:`Valuation._day_parts`, in floats once per change of the books or
        carried across fills), the same latest mids and the same conversion route
        (:func:`~execution.core.risk.float_rate`).
        """
        last_ticks = self.state.view.last_ticks

        def mid_of(symbol: str) -> float | None:
            tick = last_ticks.get(symbol)
            return None if tick is None else mid_price(tick.bid, tick.ask)

        return self._screen.value(limits.account_currency, mid_of, lambda currency: self._factor(currency, limits))

    def _factor(self, currency: str, limits: RiskLimits) -> float | None:
        """Return the float rate from ``currency`` to the account currency at the latest mids (None: not known).

        :func:`~execution.core.risk.float_rate` at those mids, kept while the latest ticks of
        :func:`rate_symbols` are the same.
        """
        last_ticks = self.state.view.last_ticks
        known = self._factors
        if known is None or known[0] is not limits:
            known = self._factors = (limits, {})
        memo = known[1].get(currency)
        if memo is not None:
            symbols, rates = memo[0], memo[1]
            for index in range(len(symbols)):  # no zip: a compiled zip(strict=True) is a Python call
                if last_ticks.get(symbols[index]) is not rates[index]:
                    break
            else:
                return memo[2]
        symbols = rate_symbols(currency, limits.account_currency, limits.instruments) if memo is None else memo[0]
        rates = tuple(map(last_ticks.get, symbols))
        mids = {symbol: mid_price(tick.bid, tick.ask) for symbol, tick in zip(symbols, rates, strict=True) if tick}
        factor = float_rate(currency, limits, mids)
        known[1][currency] = (symbols, rates, factor)
        return factor
