"""Instrument specs and currency conversion: one implementation for execution, the paper broker and models.

An :class:`Instrument` is what a position in a symbol means in money: units per lot
(a EURUSD lot is 100,000 EUR, a gold lot 100 oz, an index CFD lot 1 index), the currency
its prices are quoted in, the volume limits and the pip. The registry is the ``symbols``
table of the settings (digits and tick size, plus any of these fields); what a table
leaves out comes from :data:`KNOWN` for common symbols, else from the name (``EURJPY``:
base EUR, quote JPY, 100,000 per lot). On MT5, ``symbol_info()`` gives the same fields
(``trade_contract_size``, ``currency_base``, ``currency_profit``, ``currency_margin``,
``volume_min``/``volume_step``/``volume_max``, ``digits``, ``point``), see
:func:`from_mt5_symbol_info`.

:func:`convert` turns an amount in one currency into another at the live mid of the
right pair: direct (EURUSD for EUR -> USD: multiply), inverse (USDJPY for JPY -> USD:
divide), or through USD when neither pair is quoted (JPY -> GBP via USDJPY and GBPUSD);
it returns None when no rate is known, and callers refuse with a clear reason rather
than guess.

:class:`TickBounds` is what a tick of the symbol may plausibly hold (validation refuses
the rest, ``tickwave.validation``): a bid, ask or last (0: no deal) between ``price_min``
and ``price_max``, a volume up to ``tick_volume_max``. Left out of the ``symbols`` table,
they come from the grid: a price is a whole number of ticks (at least one), a volume a
whole number of volume steps, and float64 holds at most 2^53 steps exactly, so anything
beyond is no quote of the symbol. Every sum and square the dataflow makes of values so
bounded stays finite (a bar's volume would need 2^970 ticks to overflow).
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import tickwave_core

from tickwave.config import SymbolSpec
from tickwave.money import MONEY_CONTEXT, minor_units, step_places, to_decimal

# A conversion is a division and cannot be exact (tickwave.money traps rounding): it is
# done once, after the exact sums in the quote currency, to 28 significant digits, half even, by
# the execution core (convert). The context is that rule's precision for other divisions of money.
CONVERSION_CONTEXT: Final = decimal.Context(prec=28, rounding=decimal.ROUND_HALF_EVEN, traps=[decimal.InvalidOperation])
PIVOT: Final = tickwave_core.CONVERSION_PIVOT  # the currency a conversion without a direct pair goes through
_FX_LOT: Final = 100_000.0
GRID_STEPS: Final = float(2**53)  # steps of a grid float64 holds exactly: the widest default bound


@dataclass(frozen=True)
class TickBounds:
    """What a tick of one symbol may plausibly hold: prices in ``[price_min, price_max]``, volume up to a maximum."""

    price_min: float
    price_max: float
    tick_volume_max: float

    def price_problem(self, name: str, value: float) -> str | None:
        """Say why ``value`` (a bid, ask or non-zero last) is implausible, or None."""
        if value < self.price_min:
            return f"{name} {value!r} < price_min {self.price_min!r}"
        if value > self.price_max:
            return f"{name} {value!r} > price_max {self.price_max!r}"
        return None


# Bounds of a symbol without an instrument (a dataflow accepting every symbol): the finest
# tick the settings allow (10 digits) to the coarsest grid of whole units.
UNLISTED_BOUNDS: Final = TickBounds(price_min=1e-10, price_max=GRID_STEPS, tick_volume_max=GRID_STEPS)


@dataclass(frozen=True)
class Instrument:
    """What one lot of a symbol is, and how its prices are quoted."""

    symbol: str
    contract_size: float
    base: str
    quote: str
    margin_currency: str
    digits: int
    point: float
    pip_size: float
    volume_min: float
    volume_step: float
    volume_max: float
    bounds: TickBounds

    def notional(self, lots: Decimal | float, price: Decimal | float) -> Decimal:
        """Return |lots| x contract size x price, in the quote currency (exact)."""
        units = MONEY_CONTEXT.multiply(abs(to_decimal(lots)), to_decimal(self.contract_size))
        return MONEY_CONTEXT.multiply(units, to_decimal(price))

    def price_pnl(self, lots: Decimal | float, price_move: Decimal | float) -> Decimal:
        """Return the P&L of ``lots`` (signed) over a price move, in the quote currency (exact)."""
        units = MONEY_CONTEXT.multiply(to_decimal(lots), to_decimal(self.contract_size))
        return MONEY_CONTEXT.multiply(units, to_decimal(price_move))


# Contract and quoting facts of common symbols as most brokers set them (MT5 overrides them).
KNOWN: dict[str, dict[str, Any]] = {
    "XAUUSD": {"contract_size": 100.0, "base": "XAU", "quote": "USD", "pip_size": 0.1, "volume_max": 50.0},
    "XAGUSD": {"contract_size": 5_000.0, "base": "XAG", "quote": "USD", "pip_size": 0.01, "volume_max": 50.0},
    "US500": {
        "contract_size": 1.0,
        "base": "US500",
        "quote": "USD",
        "margin_currency": "USD",
        "pip_size": 0.1,
        "volume_min": 0.1,
        "volume_step": 0.1,
        "volume_max": 500.0,
    },
}


def instrument_for(symbol: str, spec: SymbolSpec) -> Instrument:
    """Resolve the instrument of ``symbol`` from its registry entry, the known defaults and its name."""
    known = KNOWN.get(symbol, {})
    is_pair = len(symbol) == 6 and symbol.isalpha() and symbol.isupper()
    base = spec.base or known.get("base") or (symbol[:3] if is_pair else symbol)
    quote = spec.quote or known.get("quote") or (symbol[3:] if is_pair else PIVOT)
    point = 10.0**-spec.digits
    default_pip = point * 10 if is_pair and spec.digits in (3, 5) else point
    volume_step = spec.volume_step or known.get("volume_step") or 0.01
    bounds = TickBounds(
        price_min=spec.price_min or known.get("price_min") or spec.tick_size,
        price_max=spec.price_max or known.get("price_max") or spec.tick_size * GRID_STEPS,
        tick_volume_max=spec.tick_volume_max or known.get("tick_volume_max") or volume_step * GRID_STEPS,
    )
    return Instrument(
        symbol=symbol,
        contract_size=spec.contract_size or known.get("contract_size") or (_FX_LOT if is_pair else 1.0),
        base=base,
        quote=quote,
        margin_currency=spec.margin_currency or known.get("margin_currency") or base,
        digits=spec.digits,
        point=point,
        pip_size=spec.pip_size or known.get("pip_size") or default_pip,
        volume_min=spec.volume_min or known.get("volume_min") or 0.01,
        volume_step=volume_step,
        volume_max=spec.volume_max or known.get("volume_max") or 100.0,
        bounds=bounds,
    )


def registry(symbols: Mapping[str, SymbolSpec]) -> dict[str, Instrument]:
    """Resolve every symbol of the settings' ``symbols`` table."""
    return {symbol: instrument_for(symbol, spec) for symbol, spec in symbols.items()}


def tick_bounds(symbols: Mapping[str, SymbolSpec]) -> dict[str, TickBounds]:
    """The plausibility bounds of every symbol of the settings' ``symbols`` table."""
    return {symbol: instrument.bounds for symbol, instrument in registry(symbols).items()}


def price_sql(price: str, instruments: Mapping[str, Instrument], symbol: str = "symbol", extra_digits: int = 0) -> str:
    """SQL showing the Float64 ``price`` at its symbol's digits (+ ``extra_digits``): no float noise in reports.

    ClickHouse's ``round`` takes a constant scale, so there is one branch per instrument
    (``multiIf(symbol = 'EURUSD', round(price, 5), ...)``); a symbol without an instrument
    keeps its value. A mid of two prices on the grid needs one digit more to stay exact
    (``extra_digits=1``). Symbol names are validated by the settings (letters, digits, ``._#-``).
    """
    branches = [
        f"{symbol} = '{name}', round({price}, {instruments[name].digits + extra_digits})"
        for name in sorted(instruments)
    ]
    return f"multiIf({', '.join([*branches, price])})" if branches else price


def quote_amount_sql(amount: str, instruments: Mapping[str, Instrument], symbol: str = "symbol") -> str:
    """SQL showing the Decimal ``amount``, in its symbol's quote currency, at that currency's minor unit.

    The SQL twin of :func:`tickwave.money.display_amount` for rows in different quote currencies:
    ``roundBankers`` (half even, exact on a Decimal; ``amount`` must be one, a Float64 would be rounded
    by its binary value), one branch per minor unit; a symbol without an instrument keeps its value.
    """
    by_places: dict[int, list[str]] = {}
    for name in sorted(instruments):
        by_places.setdefault(minor_units(instruments[name].quote), []).append(f"'{name}'")
    branches = [
        f"{symbol} IN ({', '.join(names)}), roundBankers({amount}, {places})"
        for places, names in sorted(by_places.items())
    ]
    return f"multiIf({', '.join([*branches, amount])})" if branches else amount


def lots_sql(lots: str, instruments: Mapping[str, Instrument], symbol: str = "symbol") -> str:
    """SQL showing ``lots`` at its symbol's lot step (half even), the twin of :func:`tickwave.money.display_lots`.

    The lots are read as the exact decimal of their shortest text (as :func:`tickwave.money.to_decimal`
    reads a float), counted in steps, rounded half even and multiplied back; one branch per step.
    """
    by_step: dict[float, list[str]] = {}
    for name in sorted(instruments):
        by_step.setdefault(instruments[name].volume_step, []).append(f"'{name}'")
    exact = f"toDecimal128(toString({lots}), 8)"
    branches = []
    for step, names in sorted(by_step.items()):
        places, text = step_places(step), format(to_decimal(step), "f")
        counted = f"roundBankers({exact} / toDecimal128('{text}', 8), 0) * toDecimal128('{text}', 8)"
        branches.append(f"{symbol} IN ({', '.join(names)}), toDecimal128({counted}, {places})")
    return f"multiIf({', '.join([*branches, exact])})" if branches else exact


def from_mt5_symbol_info(info: Any) -> Instrument:
    """Build an instrument from MetaTrader5's ``symbol_info()`` (a ``SymbolInfo`` named tuple)."""
    return Instrument(
        symbol=info.name,
        contract_size=float(info.trade_contract_size),
        base=info.currency_base,
        quote=info.currency_profit,
        margin_currency=info.currency_margin,
        digits=int(info.digits),
        point=float(info.point),
        pip_size=float(info.point) * (10 if int(info.digits) in (3, 5) else 1),
        volume_min=float(info.volume_min),
        volume_step=float(info.volume_step),
        volume_max=float(info.volume_max),
        bounds=TickBounds(float(info.point), float(info.point) * GRID_STEPS, float(info.volume_step) * GRID_STEPS),
    )


def conversion_route(
    source: str, target: str, instruments: Mapping[str, Instrument], mids: Mapping[str, float]
) -> tuple[tuple[float, bool], ...] | None:
    """The pairs :func:`convert` goes through (mid, True: multiply, else divide): one, else two via USD; or None.

    The core's rule (``rates.rs``): the first quoted pair by symbol whose mid is above zero.
    """
    return tickwave_core.conversion_route(source, target, instruments, mids)


def rate_symbols(source: str, target: str, instruments: Mapping[str, Instrument]) -> tuple[str, ...]:
    """The symbols whose mids :func:`convert` reads from ``source`` to ``target``: pairs of two of them and USD."""
    if source == target:
        return ()
    currencies = {source, target, PIVOT}
    return tuple(
        sorted(symbol for symbol, spec in instruments.items() if spec.base in currencies and spec.quote in currencies)
    )


def convert(
    amount: Decimal, source: str, target: str, instruments: Mapping[str, Instrument], mids: Mapping[str, float]
) -> Decimal | None:
    """Return ``amount`` of ``source`` in ``target`` at the live mids (:func:`conversion_route`), or None.

    Each mid is read as the exact decimal of its shortest text; each step multiplies or divides
    to 28 significant digits, half even (the core's ``rounding.rs``).
    """
    route = conversion_route(source, target, instruments, mids)
    return None if route is None else convert_along(amount, route)


def convert_along(amount: Decimal, route: tuple[tuple[float, bool], ...]) -> Decimal:
    """Return ``amount`` converted through ``route`` (:func:`conversion_route`'s), as :func:`convert` does.

    For many amounts at the same mids: the route found once.
    """
    return tickwave_core.convert_amount(amount, route) if route else amount
