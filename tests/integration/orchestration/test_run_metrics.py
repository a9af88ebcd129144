"""Dagster's run outcomes as a Prometheus gauge: the supervisor counts the warehouse's ``pipeline_runs``."""

from __future__ import annotations

from datetime import UTC, datetime

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from app.services.metrics import DagsterRunsCollector
from orchestration.run_log import record_runs
from tickwave.config import Settings


def _run(run_id: str, job: str, status: str, at_s: int) -> tuple[object, ...]:
    moment = datetime.fromtimestamp(at_s, UTC)
    return (run_id, job, status, "", [], moment, moment, "", moment)


def test_dagster_runs_when_collected_then_latest_status_of_each_run_counted_by_job(
    warehouse_settings: Settings, fresh_database: str
) -> None:
    # A database of its own: the shared one holds the runs other tests recorded.
    migrate(warehouse_settings, database=fresh_database)
    warehouse = connect(warehouse_settings, database=fresh_database)
    warehouse_database = fresh_database
    record_runs(warehouse, [_run("r1", "daily_reports", "STARTED", 1_700_000_000)])
    record_runs(  # a later insert: the same run replaced by its outcome (its own part, until a merge)
        warehouse,
        [
            _run("r1", "daily_reports", "SUCCESS", 1_700_000_060),
            _run("r2", "daily_reports", "FAILURE", 1_700_000_100),
            _run("r3", "dbt_marts", "SUCCESS", 1_700_000_200),
        ],
    )
    settings = warehouse_settings.model_copy(
        update={"clickhouse": warehouse_settings.clickhouse.model_copy(update={"database": warehouse_database})}
    )

    [family] = DagsterRunsCollector(settings).collect()
    counted = {(s.labels["job"], s.labels["status"]): s.value for s in family.samples}

    assert counted == {("daily_reports", "SUCCESS"): 1, ("daily_reports", "FAILURE"): 1, ("dbt_marts", "SUCCESS"): 1}
    warehouse.close()
