"""Weekly housekeeping: merge the warehouse's duplicate rows, prune old Dagster runs and report folders.

Saturday 03:00 UTC. The ages are settings (``retention.dagster_runs_days``, ``retention.reports_days``).
"""

from datetime import timedelta

import dagster as dg

from orchestration.automation import schedule_status
from orchestration.resources import TickwaveResource


@dg.asset(group_name="maintenance", kinds={"clickhouse"})
def warehouse_merged(context: dg.AssetExecutionContext, tickwave: TickwaveResource) -> dg.MaterializeResult[None]:
    """ReplacingMergeTree partitions with several parts merged, so plain reads stop counting redelivered rows."""
    from orchestration.maintenance import merge_duplicates

    settings = tickwave.settings()
    with tickwave.client() as client:
        merged = merge_duplicates(client, settings.clickhouse.database)
    for table in merged:
        context.log.info(
            f"{table.table}: {table.partitions} partitions, parts {table.parts_before} -> {table.parts_after}, "
            f"rows {table.rows_before} -> {table.rows_after} in {table.seconds:.1f} s"
        )
    return dg.MaterializeResult(
        metadata={
            "tables_merged": len(merged),
            "duplicate_rows_removed": sum(t.rows_before - t.rows_after for t in merged),
            "detail": dg.MetadataValue.json(
                {
                    t.table: {"parts": [t.parts_before, t.parts_after], "rows": [t.rows_before, t.rows_after]}
                    for t in merged
                }
            ),
        }
    )


@dg.asset(group_name="maintenance", kinds={"dagster"})
def run_history_pruned(context: dg.AssetExecutionContext, tickwave: TickwaveResource) -> dg.MaterializeResult[None]:
    """Dagster runs and their compute logs older than ``retention.dagster_runs_days`` deleted (storage stays small)."""
    from orchestration.maintenance import prune_compute_logs, prune_runs

    cutoff = tickwave.now() - timedelta(days=tickwave.settings().retention.dagster_runs_days)
    deleted = prune_runs(context.instance, cutoff)
    logs = prune_compute_logs(context.instance, cutoff)
    return dg.MaterializeResult(
        metadata={"runs_deleted": deleted, "compute_logs_deleted": logs, "older_than": cutoff.isoformat()}
    )


@dg.asset(group_name="maintenance", kinds={"file"})
def report_folders_pruned(tickwave: TickwaveResource) -> dg.MaterializeResult[None]:
    """Report folders older than ``retention.reports_days`` deleted; their chain verifies from the pruned head."""
    from reports.retention import prune_days

    settings = tickwave.settings()
    deleted = prune_days(settings.state_path / "reports", settings.retention.reports_days, tickwave.now().date())
    return dg.MaterializeResult(
        metadata={
            "days_deleted": len(deleted),
            "oldest": deleted[0].isoformat() if deleted else "",
            "newest": deleted[-1].isoformat() if deleted else "",
            "kept_days": settings.retention.reports_days,
        }
    )


MAINTENANCE_JOB = dg.define_asset_job(
    "maintenance", selection=dg.AssetSelection.groups("maintenance"), description="Weekly housekeeping."
)


@dg.definitions
def maintenance() -> dg.Definitions:
    """The housekeeping assets, their job and their weekly schedule (Saturday 03:00 UTC: the FX market is shut)."""
    schedule = dg.ScheduleDefinition(
        name="maintenance_weekly",
        job=MAINTENANCE_JOB,
        cron_schedule="0 3 * * 6",
        execution_timezone="UTC",
        default_status=schedule_status(),
    )
    return dg.Definitions(
        assets=[warehouse_merged, run_history_pruned, report_folders_pruned],
        jobs=[MAINTENANCE_JOB],
        schedules=[schedule],
    )
