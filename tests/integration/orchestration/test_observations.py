"""The raw tables observed (rows, newest row) and Dagster's runs copied into ``pipeline_runs``, by their sensors,
evaluated with Dagster's own sensor-context API against the real warehouse."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from orchestration.defs.maintenance.run_log import pipeline_runs_recorded
from orchestration.defs.quality.observations import raw_tables_observed
from orchestration.resources import TickwaveResource
from quality.suites import RAW_TABLES
from tests.integration.orchestration.conftest import Warehouse, drop
from tickwave.config import Settings


def _resource(warehouse: Warehouse) -> TickwaveResource:
    return TickwaveResource(state_dir=str(warehouse.settings.state_path), database=warehouse.database)


def test_raw_tables_observed_when_evaluated_then_each_table_reports_its_rows_and_newest_row(
    orchestration_warehouse: Warehouse,
) -> None:
    context = dg.build_sensor_context(resources={"tickwave": _resource(orchestration_warehouse)})

    result = raw_tables_observed(context)

    assert isinstance(result, dg.SensorResult)
    observed = {event.asset_key.path[-1]: event.metadata for event in result.asset_events or []}
    assert set(observed) == set(RAW_TABLES)
    client = connect(orchestration_warehouse.settings, database=orchestration_warehouse.database)
    try:
        for table in ("ticks", "orders", "fills", "bars_1m"):
            stored = client.command(f"SELECT count() FROM {table}")
            assert observed[table]["dagster/row_count"].value == stored > 0, table
            assert observed[table]["dagster/last_updated_timestamp"].value > 0, table
        newest_fill = client.command("SELECT toUnixTimestamp64Milli(max(filled_at_ms)) FROM fills") / 1000
    finally:
        client.close()
    assert observed["fills"]["dagster/last_updated_timestamp"].value == pytest.approx(newest_fill)


@pytest.fixture
def empty_warehouse(warehouse_settings: Settings) -> Iterator[Warehouse]:
    database = f"runs_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    try:
        yield Warehouse(warehouse_settings, database, None)
    finally:
        drop(warehouse_settings, database)


def test_pipeline_runs_recorded_when_runs_succeed_and_fail_then_each_is_one_row_with_its_outcome(
    empty_warehouse: Warehouse,
) -> None:
    @dg.asset
    def fine() -> None:
        return None

    @dg.asset
    def broken() -> None:
        raise RuntimeError("the source table is missing")

    instance = dg.DagsterInstance.ephemeral()
    succeeded = dg.materialize([fine], instance=instance, tags={"dagster/partition": "2026-11-20"})
    failed = dg.materialize([broken], instance=instance, raise_on_error=False)
    resources = {"tickwave": _resource(empty_warehouse)}

    first = dg.build_sensor_context(instance=instance, resources=resources)
    pipeline_runs_recorded(first)
    again = dg.build_sensor_context(instance=instance, resources=resources, cursor=first.cursor)
    repeated = pipeline_runs_recorded(again)

    client = connect(empty_warehouse.settings, database=empty_warehouse.database)
    try:
        rows = client.query(
            "SELECT run_id, status, partition_key, asset_keys, started_at_ms IS NOT NULL, "
            "ended_at_ms >= started_at_ms, detail FROM pipeline_runs ORDER BY status"
        ).result_rows
    finally:
        client.close()
    assert [row[:6] for row in rows] == [
        (failed.run_id, "FAILURE", "", ["broken"], True, True),
        (succeeded.run_id, "SUCCESS", "2026-11-20", ["fine"], True, True),
    ]
    assert "broken" in rows[0][6] and "failed" in rows[0][6].lower()
    assert isinstance(repeated, dg.SkipReason) and "no run changed" in (repeated.skip_message or "")
