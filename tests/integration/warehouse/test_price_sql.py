"""Prices shown at their instrument's digits by the warehouse (SQL generated from the instrument registry)."""

from __future__ import annotations

import random

from clickhouse_connect.driver.client import Client

from tickwave.config import default_symbols
from tickwave.instruments import price_sql, registry


def test_price_sql_when_prices_carry_float_noise_then_the_warehouse_writes_them_at_the_symbols_digits(
    warehouse: Client,
) -> None:
    instruments = registry(default_symbols())
    rng = random.Random(7)
    rows = []  # (symbol, the price as stored with float noise, the price on the instrument's grid)
    for name, instrument in sorted(instruments.items()):
        for _ in range(40):
            exact = round(rng.uniform(0.5, 3000.0), instrument.digits)
            rows.append((name, exact * (1 + rng.choice((-1, 1)) * 3e-16), exact))
    rows.append(("EURUSD", 1.0850849999999999, 1.08508))  # the noise a compliance report showed
    rows.append(("UNKNOWN", 1.0850849999999999, 1.0850849999999999))  # no instrument: as it is
    values = ", ".join(f"('{symbol}', {noisy!r})" for symbol, noisy, _ in rows)
    source = f"(SELECT c1 AS symbol, c2 AS price FROM values({values}))"

    shown = warehouse.raw_query(f"SELECT {price_sql('price', instruments)} FROM {source}", fmt="CSV").decode().split()
    mid = price_sql("price", instruments, extra_digits=1)
    mids = (
        warehouse.raw_query(
            f"SELECT {mid} FROM {source} WHERE symbol = 'EURUSD' AND price = 1.0850849999999999", fmt="CSV"
        )
        .decode()
        .split()
    )

    assert [float(text) for text in shown] == [exact for _, _, exact in rows]
    for (symbol, _, _), text in zip(rows[:-1], shown, strict=False):  # at most the digits: no float noise
        assert len(text.partition(".")[2]) <= instruments[symbol].digits, (symbol, text)
    assert mids == ["1.085085"]  # a mid keeps its half point
