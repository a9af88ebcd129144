"""One asset check per raw table: its Great Expectations suite over a bounded slice, results into ``dq_results``.

A failed *blocking* expectation fails the check with ERROR severity, which stops the
assets downstream of that table in the same run (training behind ``features``); failed
*warning* expectations fail it with WARN severity, which stops nothing.
"""

from typing import TYPE_CHECKING

import dagster as dg

from orchestration.automation import schedule_status
from orchestration.defs.quality.assets import raw_key
from orchestration.resources import TickwaveResource
from quality.suites import RAW_TABLES

if TYPE_CHECKING:
    from quality.runner import SuiteOutcome


def quality_check(table: str) -> dg.AssetChecksDefinition:
    """Build the ``quality`` check of one raw table."""

    @dg.asset_check(
        asset=raw_key(table),
        name="quality",
        blocking=True,
        description=f"Great Expectations suite of `{table}` (quality/suites.py) over its newest 24 h",
    )
    def check(context: dg.AssetCheckExecutionContext, tickwave: TickwaveResource) -> dg.AssetCheckResult:
        from quality.runner import validate_table, write_results
        from quality.suites import QualityLimits
        from tickwave.market import MarketCalendar

        settings = tickwave.settings()
        limits = QualityLimits.from_settings(settings)
        calendar = MarketCalendar.from_settings(settings.market)
        with tickwave.client() as client:
            outcome = validate_table(client, table, calendar=calendar, limits=limits, run_id=context.run.run_id)
            written = write_results(client, outcome)
        context.log.info(
            f"{table}: {len(outcome.outcomes)} expectations over {outcome.rows} rows, "
            f"{written} dq_results rows (run {outcome.run_id})"
        )
        severity = dg.AssetCheckSeverity.ERROR if outcome.blocking_failures else dg.AssetCheckSeverity.WARN
        return dg.AssetCheckResult(
            passed=not outcome.blocking_failures and not outcome.warnings,
            severity=severity,
            metadata={
                **{
                    key: dg.MetadataValue.json(value) if isinstance(value, list) else value
                    for key, value in outcome.summary().items()
                    if value is not None
                },
                "failed": dg.MetadataValue.md(_failures(outcome)),
            },
        )

    return check


def _failures(outcome: "SuiteOutcome") -> str:
    failed = [item for item in outcome.outcomes if not item.is_success]
    if not failed:
        return "every expectation held"
    lines = ["| expectation | severity | unexpected | of |", "|---|---|---|---|"]
    lines += [
        f"| `{item.check_name}` | {item.severity} | {item.unexpected_count} | {item.element_count} |" for item in failed
    ]
    return "\n".join(lines)


QUALITY_CHECKS = [quality_check(table) for table in RAW_TABLES]
QUALITY_JOB = dg.define_asset_job(
    "quality_checks",
    selection=dg.AssetSelection.checks(*QUALITY_CHECKS),
    description="Every raw table's data-quality suite (hourly).",
)


@dg.definitions
def quality() -> dg.Definitions:
    """The checks, their job and their hourly schedule (UTC)."""
    schedule = dg.ScheduleDefinition(
        name="quality_hourly",
        job=QUALITY_JOB,
        cron_schedule="0 * * * *",
        execution_timezone="UTC",
        default_status=schedule_status(),
    )
    return dg.Definitions(asset_checks=QUALITY_CHECKS, jobs=[QUALITY_JOB], schedules=[schedule])
