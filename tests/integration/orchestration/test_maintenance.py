"""Weekly housekeeping through Dagster against the real warehouse: duplicates merged away, nothing else lost."""

from __future__ import annotations

import uuid

import dagster as dg

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from tests.integration.orchestration.conftest import Warehouse, drop, materialize, materialized
from tickwave.config import Settings


def test_maintenance_when_a_table_holds_redelivered_rows_then_plain_reads_count_each_once(
    definitions: dg.Definitions, warehouse_settings: Settings
) -> None:
    database = f"maint_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    client = connect(warehouse_settings, database=database)
    try:
        columns = [
            "signal_id",
            "symbol",
            "timeframe",
            "bar_start_ms",
            "direction",
            "strength",
            "confidence",
            "model_id",
            "model_version",
            "created_at_ms",
        ]
        for copy in range(3):  # three deliveries of one signal, three parts
            client.command(
                f"INSERT INTO signals ({', '.join(columns)}) VALUES ('sig-1', 'EURUSD', '1m', "
                f"'2026-01-05 10:00:00', 'long', 0.5, 0.9, 'm', 1, '2026-01-05 10:00:0{copy}')",
                settings={"insert_deduplicate": 0},
            )
        client.command(
            "INSERT INTO signals (signal_id, symbol, timeframe, bar_start_ms, direction, strength, confidence, "
            "model_id, model_version, created_at_ms) VALUES ('sig-2', 'EURUSD', '1m', '2026-01-05 10:01:00', 'short', "
            "0.5, 0.9, 'm', 1, '2026-01-05 10:01:01')"
        )
        assert client.command("SELECT count() FROM signals") == 4

        result = materialize(
            definitions, Warehouse(warehouse_settings, database, None), dg.AssetSelection.groups("maintenance")
        )

        assert result.success and materialized(result) == {
            "warehouse_merged",
            "run_history_pruned",
            "report_folders_pruned",
        }
        assert client.command("SELECT count() FROM signals") == 2  # no FINAL needed any more
        assert client.command("SELECT count() FROM signals FINAL") == 2
        metadata = result.asset_materializations_for_node("warehouse_merged")[0].metadata
        assert metadata["duplicate_rows_removed"].value == 2
    finally:
        client.close()
        drop(warehouse_settings, database)
