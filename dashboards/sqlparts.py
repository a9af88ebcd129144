"""SQL fragments built from Tickwave's configuration (symbols, trading-day rollover).

Every value comes from the typed settings, is validated there, and is rendered as a
literal; nothing here reads user input at query time.
"""

from __future__ import annotations

from collections.abc import Mapping

from tickwave.config import MarketSettings, SymbolSpec
from tickwave.instruments import registry


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def rollover_expression(market: MarketSettings) -> str:
    """The start of the current trading day (a DateTime in the market's zone), as execution defines it.

    The day rolls over at ``market.rollover_time`` in ``market.timezone`` (17:00 New York by default):
    shift now back by the rollover's offset, take that local day's midnight, add the offset.
    """
    hours, minutes = (int(part) for part in market.rollover_time.split(":"))
    offset = hours * 60 + minutes
    zone = _literal(market.timezone)
    return f"toStartOfDay(toTimeZone(now() - INTERVAL {offset} MINUTE, {zone})) + INTERVAL {offset} MINUTE"


def contract_size_expression(symbols: Mapping[str, SymbolSpec], column: str = "symbol") -> str:
    """Units per lot of ``column``'s symbol, from the symbol registry (1 for an unknown symbol)."""
    instruments = registry(symbols)
    names = ", ".join(_literal(name) for name in sorted(instruments))
    sizes = ", ".join(repr(float(instruments[name].contract_size)) for name in sorted(instruments))
    return f"transform(toString({column}), [{names}], [{sizes}], 1.0)"


def quote_currency_expression(symbols: Mapping[str, SymbolSpec], column: str = "symbol") -> str:
    """The currency ``column``'s symbol is quoted (and earns P&L) in, from the symbol registry."""
    instruments = registry(symbols)
    names = ", ".join(_literal(name) for name in sorted(instruments))
    quotes = ", ".join(_literal(instruments[name].quote) for name in sorted(instruments))
    return f"transform(toString({column}), [{names}], [{quotes}], '')"
