"""The scale benchmark's data, written through the bulk path: every timeframe, its proportions, ids that repeat."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clickhouse_connect.driver.client import Client

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from bench.scale import HOUR_MS, SYMBOLS, TICKS_PER_ORDER, backfill, write_chunk
from tickwave.config import Settings
from tickwave.timeframes import TIMEFRAMES, TIMEFRAMES_MS

TICKS = 20_000
END_MS = 1_795_000_000_000 // HOUR_MS * HOUR_MS  # 2026-11-19, on the hour
COUNTED = ("ticks", *(f"bars_{timeframe}" for timeframe in TIMEFRAMES), "features", "predictions", "signals")


@pytest.fixture
def scale_client(warehouse_settings: Settings, fresh_database: str) -> Iterator[Client]:
    migrate(warehouse_settings, database=fresh_database)
    client = connect(warehouse_settings, database=fresh_database)
    try:
        yield client
    finally:
        client.close()


def counts(client: Client) -> dict[str, int]:
    tables = (*COUNTED, "orders", "fills", "order_events")
    return {table: int(client.command(f"SELECT count() FROM {table} FINAL")) for table in tables}


def test_scale_chunks_when_written_twice_then_every_timeframe_in_proportion_and_no_row_repeats(
    warehouse_settings: Settings, scale_client: Client
) -> None:
    chunks = backfill(0, TICKS, END_MS)
    alignment = warehouse_settings.bar_alignment

    for chunk in chunks:
        write_chunk(scale_client, chunk, alignment)
    first = counts(scale_client)
    for chunk in chunks:
        write_chunk(scale_client, chunk, alignment)
    again = counts(scale_client)

    assert again == first  # every id is derived from the chunk: a second write replaces, never adds
    assert first["ticks"] == TICKS
    span_ms = END_MS - chunks[0].start_ms
    for timeframe in TIMEFRAMES:
        symbols = int(scale_client.command(f"SELECT uniqExact(symbol) FROM bars_{timeframe}"))
        assert symbols == len(SYMBOLS), timeframe
    # bars of a minute and coarser: one per symbol and window met by the span (a session window may be cut)
    assert first["bars_1m"] == len(SYMBOLS) * span_ms // TIMEFRAMES_MS["1m"]
    assert first["features"] == first["predictions"] == first["bars_1m"]
    orders = sum(chunk.orders for chunk in chunks)
    assert first["signals"] == orders == pytest.approx(TICKS / TICKS_PER_ORDER, rel=0.25)
    assert first["orders"] == orders
    assert 0.9 * orders <= first["fills"] <= orders  # a fill per order but those of every 40th pair (rejected)
