"""Dagster runs as ``pipeline_runs`` rows in the warehouse, for the ops board and the reports' status.

One row per run, replaced as its status changes (ReplacingMergeTree on ``updated_at_ms``):
job, status, partition, selected assets, start and end, what launched it
(:func:`orchestration.origin.trigger`: a schedule or sensor only when its tick did) and for a
failure the reason Dagster logged, so a failed or late run is visible where operators look
without opening Dagster. A run whose work feeds the audit trail (training and promotion, the
compliance reports) writes its own row (status ``STARTED``) before that work (:func:`record_start`), so
deleting the run in Dagster (GraphQL ``deletePipelineRun``) right after it leaves the
warehouse's record of it: the once-a-minute copy alone could miss a run deleted in between.
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
DETAIL_CHARS = 2000


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def run_row(
    record: dg.RunRecord, planned: Iterable[str] = (), failure: str = "", started_by: str = ""
) -> tuple[Any, ...]:
    """Return the ``pipeline_runs`` row of one run record.

    Args:
        record: the run.
        planned: the assets the run planned to materialize, when its record names no selection (a whole job).
        failure: the reason of a failed run.
        started_by: what launched it (:func:`orchestration.origin.trigger`).
    """
    run = record.dagster_run
    parts = [*([f"launched by {started_by}"] if started_by else []), *([failure] if failure else [])]
    detail = "; ".join(parts)[:DETAIL_CHARS]
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


def record_start(context: dg.AssetExecutionContext, client: Client) -> None:
    """Write the run's own row (status ``STARTED``) before a step's work: the warehouse keeps it whatever Dagster keeps.

    Raises:
        dagster.Failure: when the run is no longer in the instance (deleted): its work does not start unrecorded.
    """
    import dagster as dg

    from orchestration.origin import trigger

    instance, run = context.instance, context.run
    record = instance.get_run_record_by_id(run.run_id)
    if record is None:
        raise dg.Failure(f"run {run.run_id} is no longer in the Dagster instance: not starting work it cannot record")
    planned = [key.to_user_string() for key in context.selected_asset_keys]
    record_runs(client, [run_row(record, planned, started_by=trigger(instance, run))])


def record_runs(client: Client, rows: Iterable[tuple[Any, ...]]) -> int:
    """Insert the rows into ``pipeline_runs``; return how many."""
    batch = list(rows)
    if batch:
        client.insert(TABLE, batch, column_names=list(COLUMNS))
    return len(batch)
