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

import functools
from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Context, Decimal, Inexact, InvalidOperation
from typing import Final

import tickwave_core

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


# Rounding on purpose (reports, the warehouse's scale) is the execution core's (``rounding.rs``): any width is
# rounded rather than refused for its number of digits, half even, with the digits and exponent Python's
# ``quantize`` gives (a negative zero too). Only display_lots' division below rounds in Python.
_ROUNDING_CONTEXT: Final = Context(prec=1000, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])
# Decimal places of the warehouse's money columns (Decimal(38, 18)).
WAREHOUSE_PLACES: Final[int] = tickwave_core.WAREHOUSE_PLACES


def quantize(amount: Decimal, places: int = 2) -> Decimal:
    """Round an amount to ``places`` decimals (half even) for reports.

    Raises:
        ValueError: for NaN or infinity.
    """
    return tickwave_core.quantize(amount, places)


def within_places(amount: Decimal, places: int = WAREHOUSE_PLACES) -> Decimal:
    """Return ``amount`` itself when it has at most ``places`` decimals, else rounded to them (half even).

    For a column of fixed scale: an exact amount keeps its own digits (and its short text).

    Raises:
        ValueError: for NaN or infinity.
    """
    return tickwave_core.within_places(amount, places)


# ---------------------------------------------------------------------------------------------------------------------
# Where a person reads money: at the currency's minor unit (CLDR's digits: USD 2, JPY 0, KWD 3), rounded half even.


@functools.cache
def minor_units(currency: str) -> int:
    """Return the decimal places of ``currency``'s minor unit (ISO 4217 code), from the Unicode CLDR data.

    CLDR (through Babel) is the data set operating systems and browsers format money with; a currency
    it does not list gets its default, 2.

    Raises:
        ValueError: when ``currency`` is not an ISO 4217 code (three capital letters).
    """
    if len(currency) != 3 or not currency.isascii() or not currency.isalpha() or not currency.isupper():
        raise ValueError(f"currency must be an ISO 4217 code (three capital letters), got {currency!r}")
    from babel.numbers import get_currency_precision  # 0.1 s to import: only where money is shown

    return get_currency_precision(currency)


def display_amount(amount: Decimal | int | str, currency: str) -> str:
    """Show an exact amount at ``currency``'s minor unit, rounded half even: ``-31.7692465`` USD -> ``-31.77``.

    Plain digits (no grouping, no symbol), so a person and a spreadsheet read the same text. A float is
    refused: money reaches a person from its exact value (the warehouse's decimals, a CSV's text).
    """
    if isinstance(amount, float):
        raise TypeError("money is shown from its exact value (Decimal, int or text), never from a float")
    return _plain(quantize(to_decimal(amount), minor_units(currency)))


def display_lots(lots: Decimal | int | str, step: float | Decimal) -> str:
    """Show a volume at its instrument's lot step, rounded half even: ``0.60000000`` at step 0.01 -> ``0.60``."""
    if isinstance(lots, float):
        raise TypeError("lots are shown from their exact value (Decimal, int or text), never from a float")
    exact_step = to_decimal(step)
    if exact_step <= 0:
        raise ValueError(f"a lot step must be positive, got {step!r}")
    count = quantize(_ROUNDING_CONTEXT.divide(to_decimal(lots), exact_step), 0)
    return _plain(quantize(_ROUNDING_CONTEXT.multiply(count, exact_step), step_places(exact_step)))


def step_places(step: float | Decimal) -> int:
    """Return the decimal places a step is written with (0.01 -> 2, 0.5 -> 1, 1 -> 0)."""
    exponent = to_decimal(step).normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def _plain(shown: Decimal) -> str:
    # Positional digits; a negative zero (-0.004 at 2 places) reads as 0.00.
    return f"{shown.copy_abs() if shown.is_zero() else shown:f}"
