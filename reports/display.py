"""What a person reads in the HTML: money at its currency's minor unit, lots at the lot step.

The CSVs keep the warehouse's exact values; the HTML tables show the same rows with each
money and lots column rounded (half even, :mod:`tickwave.money`) by the naming rule of the
compliance views: ``*_account`` is in the account currency, ``*_quote`` in the row's quote
currency (its ``quote_currency`` column, else its symbol's instrument), ``*_lots`` at the row's
symbol's ``volume_step``. A value the rule cannot place (an unknown symbol, NULL, ``nan``) is
shown as the CSV has it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import InvalidOperation

from tickwave.instruments import Instrument
from tickwave.money import display_amount, display_lots


def _column_rule(
    name: str, columns: Sequence[str], instruments: Mapping[str, Instrument], account_currency: str
) -> Callable[[str, list[str]], str] | None:
    symbol = columns.index("symbol") if "symbol" in columns else None
    quote = columns.index("quote_currency") if "quote_currency" in columns else None

    def instrument(row: list[str]) -> Instrument | None:
        return None if symbol is None else instruments.get(row[symbol])

    if name.endswith("_account"):
        return lambda value, row: display_amount(value, account_currency)
    if name.endswith("_quote"):

        def in_quote(value: str, row: list[str]) -> str:
            found = row[quote] if quote is not None else getattr(instrument(row), "quote", None)
            return display_amount(value, found) if found else value

        return in_quote
    if name.endswith("_lots"):

        def at_step(value: str, row: list[str]) -> str:
            found = instrument(row)
            return value if found is None else display_lots(value, found.volume_step)

        return at_step
    return None


def displayed_rows(
    columns: Sequence[str], rows: Sequence[list[str]], instruments: Mapping[str, Instrument], account_currency: str
) -> list[list[str]]:
    """Return ``rows`` (a CSV's text) with money at the minor unit and lots at the lot step; the rest as they are."""
    rules = {
        index: rule
        for index, name in enumerate(columns)
        if (rule := _column_rule(name, columns, instruments, account_currency)) is not None
    }
    if not rules:
        return [list(row) for row in rows]
    shown = []
    for row in rows:
        cells = list(row)
        for index, rule in rules.items():
            if cells[index]:
                try:
                    cells[index] = rule(cells[index], row)
                except (ValueError, InvalidOperation):  # nan, inf or text: shown as written
                    pass
        shown.append(cells)
    return shown
