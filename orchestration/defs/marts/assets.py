"""Every dbt model as an asset (dagster-dbt); ``dbt build`` runs them with their tests, which become asset checks.

dbt's sources are the raw tables' assets (same keys, ``tickwave/<table>``), so the graph
runs from the warehouse tables through staging to the marts. Groups follow the folders.
The daily marts (dbt tag ``daily``, one row per day: ``execution_quality_daily``,
``model_performance_daily``, ``data_quality_daily``) are daily-partitioned assets of their
own: a partition's run rebuilds the month holding that day (the models' ``partition_day``
variable; ``insert_overwrite`` swaps the month in), so any day can be re-run or backfilled.

Scheduled builds leave dbt's unit tests out (``SCHEDULED_BUILD``): their rows are fixed in the
project, so they answer the same on every run and cost the same whatever the warehouse holds;
they change only with the project, so ``make test`` runs them
(``tests/integration/orchestration/test_dbt_unit_tests.py``), as dbt's docs advise (run unit
tests in development and CI, not in production builds).
"""

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.automation import schedule_status
from orchestration.dbt_project import (
    DBT_RUN_TAGS,
    dbt_environment,
    dbt_environment_applied,
    dbt_project,
    dbt_vars,
    parse_key,
    private_target,
)
from orchestration.resources import TickwaveResource


class TickwaveDbtTranslator(DagsterDbtTranslator):
    """Groups by folder (staging, intermediate, marts); sources keep dbt's ``tickwave/<table>`` keys."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """Name the group after the model's folder."""
        if dbt_resource_props["resource_type"] != "model":
            return super().get_group_name(dbt_resource_props)
        return str(dbt_resource_props["fqn"][1]) if len(dbt_resource_props["fqn"]) > 2 else "marts"


DAILY_MARTS = "tag:daily"
# `dbt build` as the schedules run it: models and data tests; the unit tests run in `make test`.
SCHEDULED_BUILD = ("build", "--exclude-resource-type", "unit_test")
DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)  # today included


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    exclude=DAILY_MARTS,
    dagster_dbt_translator=TickwaveDbtTranslator(),
)
def tickwave_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, tickwave: TickwaveResource) -> Iterator[Any]:
    """Run ``dbt build`` for the selected models against the configured warehouse and symbol registry."""
    settings = tickwave.settings()
    yield from _build(dbt, context, json.dumps(dbt_vars(settings)), dbt_environment(settings, tickwave.database))


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    select=DAILY_MARTS,
    partitions_def=DAYS,
    dagster_dbt_translator=TickwaveDbtTranslator(),
)
def tickwave_dbt_daily(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, tickwave: TickwaveResource
) -> Iterator[Any]:
    """Run ``dbt build`` for the daily marts of the run's day (the month holding it is rebuilt)."""
    settings = tickwave.settings()
    variables = json.dumps({**dbt_vars(settings), "partition_day": context.partition_key})
    yield from _build(dbt, context, variables, dbt_environment(settings, tickwave.database))


def _build(
    dbt: DbtCliResource, context: dg.AssetExecutionContext, variables: str, environment: Mapping[str, str]
) -> Iterator[Any]:
    # A target folder of the run's own, removed after a success; the parse saved by the last run
    # with the same variables and warehouse seeds it (a full parse is ~4 s of CPU per run).
    # The warehouse's variables (its password) are in the environment only while dbt starts.
    with private_target(f"{context.op_def.name}-{context.run_id[:8]}", parse_key(variables, environment)) as target:
        with dbt_environment_applied(environment):
            invocation = dbt.cli([*SCHEDULED_BUILD, "--vars", variables], context=context, target_path=target)
        yield from invocation.stream()


MARTS_JOB = dg.define_asset_job(
    "dbt_marts",
    selection=dg.AssetSelection.assets(tickwave_dbt),
    description="dbt build: staging and marts with their tests (every 15 minutes).",
    tags=DBT_RUN_TAGS,
)
DAILY_MARTS_JOB = dg.define_asset_job(
    "dbt_daily_marts",
    selection=dg.AssetSelection.assets(tickwave_dbt_daily),
    partitions_def=DAYS,
    description="dbt build of the daily marts for one day (today's every 15 minutes; any day by backfill).",
    tags=DBT_RUN_TAGS,
)
MODEL_PERFORMANCE_JOB = dg.define_asset_job(
    "model_performance",
    selection=dg.AssetSelection.assets("model_performance_daily"),
    partitions_def=DAYS,
    description="Rebuild model_performance_daily for a day (a new champion appeared).",
    tags=DBT_RUN_TAGS,
)


def partitions_due(now: datetime) -> list[str]:
    """Today's partition, and yesterday's while its month is not today's (a month's last rows)."""
    today = now.astimezone(UTC).date()
    yesterday = today - timedelta(days=1)
    return [str(today)] + ([str(yesterday)] if yesterday.month != today.month else [])


def staging_built(instance: dg.DagsterInstance) -> bool:
    """Whether a ``dbt_marts`` run has succeeded here: the staging views the daily marts read exist.

    The daily marts build alone (their dbt selection is the mart), so on a fresh platform a
    run that comes before the first ``dbt_marts`` run (the 15-minute schedule's first tick,
    or the first champion's sensor) fails on a staging view that is not there yet.
    """
    succeeded = dg.RunsFilter(job_name=MARTS_JOB.name, statuses=[dg.DagsterRunStatus.SUCCESS])
    return bool(instance.get_run_records(filters=succeeded, limit=1))


WAITING_FOR_STAGING = "waiting for the first dbt_marts run to build the staging views the daily marts read"


def dbt_daily_marts_every_15_minutes(context: dg.ScheduleEvaluationContext) -> list[dg.RunRequest] | dg.SkipReason:
    """Rebuild today's daily marts every 15 minutes (and yesterday's month on the 1st), once staging is built."""
    if not staging_built(context.instance):
        return dg.SkipReason(WAITING_FOR_STAGING)
    now = context.scheduled_execution_time or datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M")
    return [dg.RunRequest(run_key=f"{day}@{stamp}", partition_key=day) for day in partitions_due(now)]


@dg.definitions
def marts() -> dg.Definitions:
    """The dbt assets, their jobs, and the 15-minute schedules (UTC)."""
    status = schedule_status()
    schedule = dg.ScheduleDefinition(
        name="dbt_marts_every_15_minutes",
        job=MARTS_JOB,
        cron_schedule="*/15 * * * *",
        execution_timezone="UTC",
        default_status=status,
    )
    daily = dg.schedule(
        job=DAILY_MARTS_JOB, cron_schedule="*/15 * * * *", execution_timezone="UTC", default_status=status
    )(dbt_daily_marts_every_15_minutes)
    return dg.Definitions(
        assets=[tickwave_dbt, tickwave_dbt_daily],
        jobs=[MARTS_JOB, DAILY_MARTS_JOB, MODEL_PERFORMANCE_JOB],
        schedules=[schedule, daily],
    )
