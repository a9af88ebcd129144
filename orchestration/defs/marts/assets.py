"""Every dbt model as an asset (dagster-dbt); ``dbt build`` runs them with their tests, which become asset checks.

dbt's sources are the raw tables' assets (same keys, ``tickwave/<table>``), so the graph
runs from the warehouse tables through staging to the marts. Groups follow the folders.
"""

from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from orchestration.dbt_project import apply_dbt_environment, dbt_project
from orchestration.resources import TickwaveResource


class TickwaveDbtTranslator(DagsterDbtTranslator):
    """Groups by folder (staging, intermediate, marts); sources keep dbt's ``tickwave/<table>`` keys."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """Name the group after the model's folder."""
        if dbt_resource_props["resource_type"] != "model":
            return super().get_group_name(dbt_resource_props)
        return str(dbt_resource_props["fqn"][1]) if len(dbt_resource_props["fqn"]) > 2 else "marts"


@dbt_assets(manifest=dbt_project().manifest_path, project=dbt_project(),
            dagster_dbt_translator=TickwaveDbtTranslator())  # fmt: skip
def tickwave_dbt(context: dg.AssetExecutionContext, dbt: DbtCliResource, tickwave: TickwaveResource) -> Iterator[Any]:
    """Run ``dbt build`` for the selected models against the configured warehouse."""
    apply_dbt_environment(tickwave.settings(), tickwave.database)
    yield from dbt.cli(["build"], context=context).stream()


MARTS_JOB = dg.define_asset_job(
    "dbt_marts",
    selection=dg.AssetSelection.assets(tickwave_dbt),
    description="dbt build: staging and marts with their tests (every 15 minutes).",
)
MODEL_PERFORMANCE_JOB = dg.define_asset_job(
    "model_performance",
    selection=dg.AssetSelection.assets("model_performance_daily").upstream() & dg.AssetSelection.assets(tickwave_dbt),
    description="Rebuild model_performance_daily (a new champion appeared).",
)  # fmt: skip


@dg.definitions
def marts() -> dg.Definitions:
    """The dbt assets, their jobs, and the 15-minute schedule (UTC)."""
    schedule = dg.ScheduleDefinition(name="dbt_marts_every_15_minutes", job=MARTS_JOB, cron_schedule="*/15 * * * *",
                                     execution_timezone="UTC")  # fmt: skip
    return dg.Definitions(assets=[tickwave_dbt], jobs=[MARTS_JOB, MODEL_PERFORMANCE_JOB], schedules=[schedule])
