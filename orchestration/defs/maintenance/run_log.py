"""Every Dagster run's outcome copied into the warehouse (``pipeline_runs``) once a minute."""

from datetime import datetime

import dagster as dg

from orchestration.automation import RECORDING
from orchestration.resources import TickwaveResource


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=RECORDING,
    description="Copy the runs whose status changed into the warehouse table pipeline_runs",
)
def pipeline_runs_recorded(context: dg.SensorEvaluationContext, tickwave: TickwaveResource) -> dg.SkipReason:
    """Write one row per run changed since the cursor (the newest update seen), failures with their reason."""
    from orchestration.origin import trigger
    from orchestration.run_log import failure_reason, planned_assets, record_runs, run_row, runs_updated_since

    since = datetime.fromisoformat(context.cursor) if context.cursor else None
    records = runs_updated_since(context.instance, since)
    if not records:
        return dg.SkipReason("no run changed since the last pass")
    rows = []
    for record in records:
        run = record.dagster_run
        failure = failure_reason(context.instance, run.run_id) if run.status == dg.DagsterRunStatus.FAILURE else ""
        planned = () if run.asset_selection else planned_assets(context.instance, run.run_id)
        rows.append(run_row(record, planned, failure, trigger(context.instance, run)))
    with tickwave.client() as client:
        written = record_runs(client, rows)
    context.update_cursor(records[-1].update_timestamp.isoformat())
    return dg.SkipReason(f"{written} run changes written to pipeline_runs (no run to request)")
