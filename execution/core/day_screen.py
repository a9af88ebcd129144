"""The loss checks' first answer: the day's P&L summed in floats, with a bound on the error.

:meth:`~execution.core.valuation.Valuation.is_above` asks it before the exact sums: most ticks,
fills and signals find the day far above its limit, and a float sum with its error bound
tells so for a fraction of the exact Decimal sums' cost. Only a sum within its bound of
the floor goes to the exact valuation.
"""

from __future__ import annotations

import math
from decimal import Decimal

from tickwave_core import DayParts

from execution.core.engine_state import EngineState
from execution.core.limits import RiskLimits
from execution.core.risk import ESTIMATE_ERROR, FLOAT_ROUNDING, float_rate
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
        # Per quote currency: the day's parts in floats (as DayParts) and the drift, a bound on the error the
        # fills carried into them added; current for (day, books revision, limits) only.
        self._floats: dict[str, tuple[float, list[tuple[str, float, float]], float]] = {}
        self._current: tuple[str, int, RiskLimits] | None = None
        # As Valuation._conversions: currency -> (the rate symbols, their latest ticks then, the rate).
        self._factors: (
            tuple[RiskLimits, dict[str, tuple[tuple[str, ...], tuple[Tick | None, ...], float | None]]] | None
        ) = None
        self._floor_float: tuple[Decimal, float] | None = None  # the last floor asked and its float
        # Below the exact day's P&L at the last question found clear: (estimate - error, error).
        self.cleared: tuple[float, float] = (-math.inf, 0.0)

    def is_current(self, day: str, limits: RiskLimits) -> bool:
        """Return True when the parts are the day's with the books as they are and ``limits``."""
        return self._current_at(day, limits, self.state.books_revision)

    def _current_at(self, day: str, limits: RiskLimits, books_revision: int) -> bool:
        current = self._current
        return current is not None and current[2] is limits and current[1] == books_revision and current[0] == day

    def take(self, parts: DayParts, day: str, limits: RiskLimits) -> None:
        """Take ``parts`` (:meth:`Valuation._day_parts` of ``day`` with the books as they are) in floats."""
        self._floats = self._floats_of(parts)
        self._current = (day, self.state.books_revision, limits)

    def carry(self, fill: OrderFilled, day: str, limits: RiskLimits) -> None:
        """Keep the parts current across ``fill``, booked just now, when they were current just before it.

        At any mid, booking u units at price p adds u to the position's units and u x p to its
        cost: the day moves by u x (mid - p), however the book splits that between realised P&L
        and cost (the exact parts move realised P&L to the constant; the sum is the same at every
        mid). The units are read back from the booking (no error carried over); the cost's float
        errs by the roundings of u, p, u x p and the sum, 5 x 2**-53 of ``|cost| + |u x p|`` at
        most, which the currency's drift adds (2**-50 of it) to the error bound.
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
        known = self._floats.get(spec.quote)
        constant, legs, drift = (0.0, [], 0.0) if known is None else known
        units = float(after) * contract
        for index in range(len(legs)):
            leg = legs[index]
            if leg[0] == symbol:
                legs[index] = (symbol, units, leg[2] + traded)
                drift += 2.0**-50 * (abs(leg[2]) + abs(traded))
                break
        else:
            legs.append((symbol, units, traded))
            drift += 2.0**-50 * abs(traded)
        self._floats[spec.quote] = (constant, legs, drift)
        self._current = (day, state.books_revision, limits)

    def clears(self, limits: RiskLimits, floor: Decimal) -> bool:
        """Return True when the sum of the parts is above ``floor`` by more than its error bound (False: unsure)."""
        estimate = self.value(limits)
        if estimate is None:
            return False
        value, error = estimate
        if value - error > self._bound(floor):
            self.cleared = (value - error, error)
            return True
        return False

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
        units, mid, price = fill.fill_lots * spec.contract_size * rate, mid_price(tick.bid, tick.ask), fill.fill_price
        low, error = self.cleared
        low -= units * abs(mid - price) + ESTIMATE_ERROR * (units * (mid + price) + error)
        if low > self._bound(floor):
            self.cleared = (low, error + ESTIMATE_ERROR * units * (mid + price))
            return True
        return False

    def _bound(self, floor: Decimal) -> float:
        # The floor as a float, raised by that float's own rounding (kept for the last floor asked).
        floors = self._floor_float
        if floors is None or floors[0] != floor:
            floors = self._floor_float = (floor, float(floor))
        return floors[1] + abs(floors[1]) * FLOAT_ROUNDING

    def value(self, limits: RiskLimits) -> tuple[float, float] | None:
        """Return :meth:`Valuation._value_day`'s sum of the parts in floats and a bound on its error (None: no rate).

        The same parts (:meth:`Valuation._day_parts`, in floats once per change of the books or
        carried across fills), the same latest mids and the same conversion route
        (:func:`~execution.core.risk.float_rate`).
        """
        last_ticks = self.state.view.last_ticks
        account = limits.account_currency
        total = size = drifts = 0.0
        for currency, (constant, legs, drift) in self._floats.items():
            amount, terms = constant, abs(constant)
            for symbol, units, cost in legs:
                tick = last_ticks.get(symbol)
                if tick is None:
                    continue
                value = units * mid_price(tick.bid, tick.ask)
                amount += value - cost
                terms += abs(value) + abs(cost)
            if currency != account:
                factor = self._factor(currency, limits)
                if factor is None:
                    return None
                amount, terms, drift = amount * factor, terms * factor, drift * factor
            total += amount
            size += terms
            drifts += drift
        return total, size * ESTIMATE_ERROR + drifts * (1.0 + ESTIMATE_ERROR)

    def _floats_of(self, parts: DayParts) -> dict[str, tuple[float, list[tuple[str, float, float]], float]]:
        """Return ``parts`` as the nearest floats, with no drift yet."""
        return {currency: (constant, legs, 0.0) for currency, constant, legs in parts.floats()}

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
