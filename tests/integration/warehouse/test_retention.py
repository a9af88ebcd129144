"""Retention counts from ingestion time: replayed history survives merges."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client

from adapters.warehouse.writer import BatchWriter
from tickwave.contracts import Tick
from tickwave.warehouse.tables import TICKS, row_for


def test_ticks_when_event_time_years_old_then_kept_after_ttl_merge(warehouse: Client) -> None:
    old = Tick(symbol="RETENTION", time_ms=1_420_070_400_000, seq=0, bid=1.2, ask=1.2002)  # 2015-01-01
    with BatchWriter(warehouse, TICKS) as writer:
        writer.write([row_for(old)])

    warehouse.command("OPTIMIZE TABLE ticks FINAL")

    rows = warehouse.query("SELECT count() FROM ticks FINAL WHERE symbol = 'RETENTION'").result_rows
    assert rows == [(1,)]
