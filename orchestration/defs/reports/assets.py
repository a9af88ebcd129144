"""The seven compliance reports as daily-partitioned assets (thin glue over ``reports/``).

One multi-asset writes the day's whole set (the manifest covers all seven files, so they
are produced together) and reports one materialization per report, each with its files
linked in the metadata. The schedule runs at 00:30 UTC for the previous day. Every run of
the job, failed or not, is also written to the warehouse's ``pipeline_runs`` (the ops
board reads it), so a failed report shows there as well as in the Dagster UI. A report that
has not been written by ``orchestration.late_reports_sensor_utc`` (01:00 UTC) the next day is recorded
as a ``report_late`` service event by the ``compliance_reports_late`` sensor.
"""

from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg

from orchestration.automation import RECORDING, schedule_status
from orchestration.resources import TickwaveResource
from reports.catalog import REPORTS
from tickwave.config import REPORTS_SCHEDULE_UTC

DAYS = dg.DailyPartitionsDefinition(start_date="2020-01-01", timezone="UTC")  # a day is due once it has ended
REPORT_KEYS = {report.name: dg.AssetKey(["compliance", report.name]) for report in REPORTS}
_VIEWS = sorted({table.view for report in REPORTS for table in report.tables})


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key,
            group_name="compliance",
            kinds={"html", "csv"},
            description=report.summary,
            deps=[dg.AssetKey(table.view) for table in report.tables],
        )
        for report, key in ((report, REPORT_KEYS[report.name]) for report in REPORTS)
    ],
    partitions_def=DAYS,
    name="compliance_reports",
)
def compliance_reports(
    context: dg.AssetExecutionContext, tickwave: TickwaveResource
) -> Iterator[dg.MaterializeResult[None]]:
    """Write the partition's seven reports, manifest and index under ``<state dir>/reports/<day>/``."""
    from orchestration.compliance_views import build_compliance_views
    from orchestration.run_log import record_start
    from reports.daily import generate_day
    from tickwave.instruments import registry

    settings = tickwave.settings()
    day = date.fromisoformat(context.partition_key)
    with tickwave.client() as client:  # the run's record in the warehouse before it writes the day's reports
        record_start(context, client)
    build_compliance_views(settings, tickwave.database)
    with tickwave.client() as client:
        outcome = generate_day(
            client,
            day,
            settings.state_path / "reports",
            context.log.info,
            instruments=registry(settings.symbols),
            account_currency=settings.execution.account_currency,
        )
    for line in outcome.changed:
        context.log.warning(f"re-run of {day}: {line}")
    for line in (*outcome.flags, *outcome.warnings):
        context.log.warning(f"{day}: {line}")
    for report in REPORTS:
        files = [f"{report.name}.html", *(f"{table.name}.csv" for table in report.tables)]
        yield dg.MaterializeResult(
            asset_key=REPORT_KEYS[report.name],
            metadata={
                "html": dg.MetadataValue.path(str(outcome.directory / f"{report.name}.html")),
                "files": dg.MetadataValue.json(
                    {
                        name: {
                            "path": str(outcome.directory / name),
                            "sha256": outcome.files[name][0],
                            "rows": outcome.files[name][1],
                        }
                        for name in files
                    }
                ),
                "manifest": dg.MetadataValue.path(str(outcome.directory / "manifest.json")),
                "rows": sum(outcome.files[name][1] for name in files if name.endswith(".csv")),
                "flags": dg.MetadataValue.json(outcome.flags),
                "changed_since_last_run": dg.MetadataValue.json(outcome.changed),
            },
        )


REPORTS_JOB = dg.define_asset_job(
    "compliance_reports_job",
    selection=dg.AssetSelection.assets(compliance_reports),
    partitions_def=DAYS,
    description="The day's seven compliance reports (CSV + HTML), manifest and index.",
)
# hour, minute: the previous day's reports, before orchestration.late_reports_sensor_utc (the settings check it)
REPORTS_AT_UTC = (int(REPORTS_SCHEDULE_UTC[:2]), int(REPORTS_SCHEDULE_UTC[3:]))


def _record_run(context: dg.RunStatusSensorContext, status: str, detail: str) -> None:
    from adapters.warehouse.writer import BatchWriter
    from tickwave.warehouse.tables import PIPELINE_RUNS

    run = context.dagster_run
    record = context.instance.get_run_record_by_id(run.run_id)
    started = record.start_time if record else None
    ended = record.end_time if record else None
    tickwave: TickwaveResource = context.resources.tickwave
    now = tickwave.now()
    row = {
        "run_id": run.run_id,
        "job_name": run.job_name,
        "status": status,
        "partition_key": run.tags.get("dagster/partition", ""),
        "asset_keys": sorted(key.to_user_string() for key in run.asset_selection or REPORT_KEYS.values()),
        "started_at_ms": datetime.fromtimestamp(started, UTC) if started else None,
        "ended_at_ms": datetime.fromtimestamp(ended, UTC) if ended else now,
        "detail": detail[:2000],
        "updated_at_ms": now,
    }
    with tickwave.client() as client:
        writer = BatchWriter(client, PIPELINE_RUNS)
        writer.write([row])
        writer.close()


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    monitored_jobs=[REPORTS_JOB],
    name="compliance_reports_succeeded",
    minimum_interval_seconds=60,
    default_status=RECORDING,
)
def compliance_reports_succeeded(context: dg.RunStatusSensorContext, tickwave: TickwaveResource) -> None:
    """Record a finished report run in ``pipeline_runs``."""
    _record_run(context, "success", "reports written")


@dg.run_failure_sensor(
    monitored_jobs=[REPORTS_JOB],
    name="compliance_reports_failed",
    minimum_interval_seconds=60,
    default_status=RECORDING,
)
def compliance_reports_failed(context: dg.RunFailureSensorContext, tickwave: TickwaveResource) -> None:
    """Record a failed report run in ``pipeline_runs`` (the ops board shows it)."""
    _record_run(context, "failure", context.failure_event.message or "failed")


def _record_late(tickwave: TickwaveResource, day: date, detail: str) -> None:
    import socket

    from tickwave.warehouse.tables import SERVICE_EVENTS, to_arrow

    row = {
        "event_id": f"report-late-{day.isoformat()}",
        "event_at_ms": tickwave.now(),
        "service": "orchestration",
        "event": "report_late",
        "pid": 0,
        "exit_code": None,
        "restarts": 0,
        "detail": detail,
        "host": socket.gethostname(),
    }
    with tickwave.client() as client:
        client.insert_arrow(
            SERVICE_EVENTS.name, to_arrow(SERVICE_EVENTS, {name: [row[name]] for name in SERVICE_EVENTS.column_names})
        )


@dg.sensor(
    name="compliance_reports_late",
    minimum_interval_seconds=300,
    default_status=RECORDING,
    description="Records a report_late service event (the ops board shows it) when yesterday's reports are "
    "still missing after orchestration.late_reports_sensor_utc.",
)
def compliance_reports_late(context: dg.SensorEvaluationContext, tickwave: TickwaveResource) -> dg.SkipReason:
    """Check that yesterday's reports exist once they are due; record one ``report_late`` event per late day.

    The cursor holds the last day recorded, so a late day is recorded once, however many
    ticks see it missing; the tick's message says what was found (Dagster UI).
    """
    from reports.due import due_time, late_day

    settings = tickwave.settings()
    due = settings.orchestration.late_reports_sensor_utc
    day = late_day(tickwave.now(), settings.state_path / "reports", due_time(due))
    if day is None:
        return dg.SkipReason("yesterday's reports are there, or not due yet")
    detail = f"compliance reports for {day} are late: no manifest under {settings.state_path / 'reports'} by {due} UTC"
    if context.cursor == day.isoformat():
        return dg.SkipReason(f"{detail} (recorded already)")
    _record_late(tickwave, day, detail)
    context.update_cursor(day.isoformat())
    context.log.error(detail)
    return dg.SkipReason(f"{detail}: recorded as a report_late service event")


@dg.definitions
def reports() -> dg.Definitions:
    """The report assets, their job, the 00:30 UTC schedule and the run-outcome sensors."""
    schedule = dg.build_schedule_from_partitioned_job(
        REPORTS_JOB,
        name="compliance_reports_daily",
        hour_of_day=REPORTS_AT_UTC[0],
        minute_of_hour=REPORTS_AT_UTC[1],
        default_status=schedule_status(),
    )
    return dg.Definitions(
        assets=[compliance_reports],
        jobs=[REPORTS_JOB],
        schedules=[schedule],
        sensors=[compliance_reports_succeeded, compliance_reports_failed, compliance_reports_late],
    )
