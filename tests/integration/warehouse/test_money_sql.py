"""Money at its minor unit, lots at their step: the warehouse (SQL from the kernel's rule) and Python agree."""

from __future__ import annotations

import random
from decimal import Decimal

from clickhouse_connect.driver.client import Client

from tickwave.config import default_symbols
from tickwave.instruments import lots_sql, quote_amount_sql, registry
from tickwave.money import display_amount, display_lots, minor_units

INSTRUMENTS = registry(default_symbols())


def _amounts(rng: random.Random, places: int) -> list[str]:
    """Amounts around ``places``: exact halves (ties both ways), just off them, long tails, huge and tiny."""
    unit = Decimal(1).scaleb(-places)
    found = []
    for _ in range(30):
        whole = Decimal(rng.randint(-(10**12), 10**12)) * unit
        found += [whole + unit / 2, whole - unit / 2, whole + unit / 2 + Decimal("1e-18")]
        found.append(Decimal(rng.randint(-(10**15), 10**15)).scaleb(-rng.randint(0, 15)))
    found += [
        Decimal("99999999999999999999.5") if places == 0 else Decimal("99999999999999999998.995"),
        Decimal("1e-18"),
    ]
    return [format(amount, "f") for amount in found]


def test_quote_amount_sql_when_the_warehouse_rounds_then_it_shows_what_display_amount_shows(warehouse: Client) -> None:
    rng = random.Random(11)
    rows = [
        (name, amount)
        for name, instrument in sorted(INSTRUMENTS.items())
        for amount in _amounts(rng, minor_units(instrument.quote))
    ]
    values = ", ".join(f"('{name}', '{amount}')" for name, amount in rows)
    source = f"(SELECT c1 AS symbol, toDecimal128(c2, 18) AS amount FROM values({values}))"

    shown = warehouse.raw_query(f"SELECT {quote_amount_sql('amount', INSTRUMENTS)} FROM {source}", fmt="TSV")

    expected = [Decimal(display_amount(amount, INSTRUMENTS[name].quote)) for name, amount in rows]
    assert [Decimal(text) for text in shown.decode().split()] == expected
    assert {minor_units(instrument.quote) for instrument in INSTRUMENTS.values()} == {0, 2}  # JPY and the rest


def test_lots_sql_when_the_warehouse_rounds_then_it_shows_what_display_lots_shows(warehouse: Client) -> None:
    rng = random.Random(13)
    rows = []  # (symbol, lots as a Float64 holds them)
    for name, instrument in sorted(INSTRUMENTS.items()):
        step = Decimal(repr(instrument.volume_step))
        for _ in range(40):
            count = rng.randint(0, 5_000)
            rows += [(name, float(count * step)), (name, float(count * step + step / 2)), (name, rng.uniform(-50, 50))]
    rows.append(("EURUSD", 0.30000000000000004))  # float noise a sum leaves
    values = ", ".join(f"('{name}', {lots!r})" for name, lots in rows)
    source = f"(SELECT c1 AS symbol, toFloat64(c2) AS lots FROM values({values}))"

    shown = warehouse.raw_query(f"SELECT {lots_sql('lots', INSTRUMENTS)} FROM {source}", fmt="TSV")

    expected = [Decimal(display_lots(repr(lots), INSTRUMENTS[name].volume_step)) for name, lots in rows]
    assert [Decimal(text) for text in shown.decode().split()] == expected
    assert {instrument.volume_step for instrument in INSTRUMENTS.values()} == {0.01, 0.1}
