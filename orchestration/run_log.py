"""Dagster runs as ``pipeline_runs`` rows in the warehouse, for the ops board and the reports' status.

One row per run, replaced as its status changes (ReplacingMergeTree on ``updated_at_ms``):
job, status, partition, selected assets, start and end, and for a failure the reason Dagster
logged, so a failed or late run is visible where operators look without opening Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg
    from clickhouse_connect.driver.client import Client

TABLE = "pipeline_runs"
COLUMNS = (
    "run_id",
    "job_name",
    "status",
    "partition_key",
    "asset_keys",
    "started_at_ms",
    "ended_at_ms",
    "detail",
    "updated_at_ms",
)
TRIGGER_TAGS = ("dagster/schedule_name", "dagster/sensor_name", "dagster/backfill")
DETAIL_CHARS = 2000


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def run_row(record: dg.RunRecord, planned: Iterable[str] = (), failure: str = "") -> tuple[Any, ...]:
    """Return the ``pipeline_runs`` row of one run record.

    Args:
        record: the run.
        planned: the assets the run planned to materialize, when its record names no selection (a whole job).
        failure: the reason of a failed run.
    """
    run = record.dagster_run
    triggers = [f"{tag.removeprefix('dagster/')}={run.tags[tag]}" for tag in TRIGGER_TAGS if tag in run.tags]
    detail = "; ".join([*triggers, *([failure] if failure else [])])[:DETAIL_CHARS]
    assets = sorted({key.to_user_string() for key in run.asset_selection or ()} or set(planned))
    updated = record.update_timestamp.astimezone(UTC)
    return (
        run.run_id,
        run.job_name,
        run.status.value,
        run.tags.get("dagster/partition", ""),
        assets,
        _moment(record.start_time),
        _moment(record.end_time),
        detail,
        updated,
    )


def runs_updated_since(
    instance: dg.DagsterInstance, since: datetime | None, limit: int = 500
) -> Sequence[dg.RunRecord]:
    """Return the runs whose status changed after ``since`` (all runs when None), oldest change first."""
    import dagster as dg

    runs = dg.RunsFilter(updated_after=since)
    return instance.get_run_records(filters=runs, limit=limit, order_by="update_timestamp", ascending=True)


def planned_assets(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """Return the assets a run planned to materialize (from its event log)."""
    import dagster as dg

    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    return sorted(
        {
            event.dagster_event.asset_key.to_user_string()
            for event in events
            if event.dagster_event is not None and event.dagster_event.asset_key is not None
        }
    )


def failure_reason(instance: dg.DagsterInstance, run_id: str) -> str:
    """Return the message Dagster logged when the run failed ('' when none)."""
    import dagster as dg

    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return events[-1].message if events else ""


def record_runs(client: Client, rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert the rows into ``pipeline_runs``; return how many."""
    batch = list(rows)
    if batch:
        client.insert(TABLE, batch, column_names=list(COLUMNS))
    return len(batch)
