"""Exact arithmetic for money that is summed: P&L, exposure, cash.

Prices and volumes travel as floats (that is what MT5 gives). Summing floats over a
day of fills drifts (``0.1 + 0.2 != 0.3``) and, worse, the order of the sum changes
the result, so two processes could disagree about a risk limit. Tickwave therefore
converts each float once, at the boundary, to a :class:`~decimal.Decimal` built from
the float's shortest round-trip text (``repr``), so ``1.1`` becomes exactly ``1.1``,
and does every sum and product in exact decimal arithmetic: the context is wide
enough for any float's digits and traps ``Inexact``, so an operation that would have
to round raises instead of drifting silently. A sum of N amounts and the sum of their
negations then cancel to exactly zero, in any order, which the property tests check.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import MAX_EMAX, MAX_PREC, MIN_EMIN, ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation, Rounded
from typing import Final

# 1,000 digits hold the sum of any floats (from 1e-308 up to 1e308 spans ~630 digits).
MONEY_CONTEXT: Final = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, Inexact])

# Floats already converted (prices, lots, contract sizes recur per decision). Not zero: 0.0 and -0.0 are one key.
_CONVERTED: Final[dict[float, Decimal]] = {}
_CONVERTED_MAX: Final = 65_536  # cleared when full


def to_decimal(value: float | int | str | Decimal) -> Decimal:
    """Convert a price, volume or amount to an exact decimal (floats via their shortest repr).

    Raises:
        ValueError: for NaN or infinity.
    """
    if type(value) is float and value:
        cached = _CONVERTED.get(value)
        if cached is not None:
            return cached
    elif type(value) is Decimal and value.is_finite():  # lots and amounts already exact: as they are
        return value
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, float):
        # float.__repr__, not repr(): numpy's float64 subclasses float but reprs as "np.float64(1.1)".
        result = Decimal(float.__repr__(value))
    else:
        result = Decimal(value)
    if not result.is_finite():
        raise ValueError(f"amount must be finite, got {value!r}")
    if type(value) is float and value:
        if len(_CONVERTED) >= _CONVERTED_MAX:
            _CONVERTED.clear()
        _CONVERTED[value] = result
    return result


def exact_sum(values: Iterable[float | int | str | Decimal]) -> Decimal:
    """Sum amounts exactly (order does not change the result)."""
    total = Decimal(0)
    for value in values:
        total = MONEY_CONTEXT.add(total, to_decimal(value))
    return total


def notional(price: float | Decimal, quantity_lots: float | Decimal, contract_size: float | Decimal) -> Decimal:
    """Return price x lots x contract size, exactly."""
    product = MONEY_CONTEXT.multiply(to_decimal(price), to_decimal(quantity_lots))
    return MONEY_CONTEXT.multiply(product, to_decimal(contract_size))


# Rounding on purpose (reports, the warehouse's scale): as wide as MONEY_CONTEXT, so a large amount is
# rounded rather than refused for its number of digits, and no trap on the rounding itself.
_ROUNDING_CONTEXT: Final = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
# Decimal places of the warehouse's money columns (Decimal(38, 18)).
WAREHOUSE_PLACES: Final = 18


def quantize(amount: Decimal, places: int = 2) -> Decimal:
    """Round an amount to ``places`` decimals (half even) for reports."""
    return amount.quantize(Decimal(1).scaleb(-places), context=_ROUNDING_CONTEXT)


# Quantizing to a finer exponent appends zeros; dropping any digit (a zero too) signals Rounded, trapped here.
_SCALE_PROBE: Final = Context(prec=MAX_PREC, Emax=MAX_EMAX, Emin=MIN_EMIN, traps=[Rounded, InvalidOperation])
_SCALES: Final = {places: Decimal(1).scaleb(-places) for places in range(WAREHOUSE_PLACES + 1)}
_PROBE: Final = _SCALE_PROBE.quantize  # the context's own method, positional: 263 -> 100 ns against amount.quantize


def within_places(amount: Decimal, places: int = WAREHOUSE_PLACES) -> Decimal:
    """Return ``amount`` unchanged when it has at most ``places`` decimals, else rounded to them (half even).

    For a column of fixed scale: an exact amount keeps its own digits (and its short text). The test, ``as_tuple()
    .exponent >= -places``, is asked by a quantize (``as_tuple`` builds a named tuple in Python).
    """
    if not amount.is_finite():
        return quantize(amount, places)
    if not amount:  # a zero drops no digit; its exponent is its adjusted exponent (one digit)
        return amount if amount.adjusted() >= -places else quantize(amount, places)
    scale = _SCALES.get(places)
    try:
        _PROBE(amount, Decimal(1).scaleb(-places) if scale is None else scale)
    except Rounded:
        return quantize(amount, places)
    return amount
