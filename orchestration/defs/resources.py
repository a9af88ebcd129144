"""The resources every domain shares: Tickwave's settings and warehouse, and the dbt CLI."""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt_project import DBT_EXECUTABLE, dbt_project
from orchestration.resources import TickwaveResource


@dg.definitions
def resources() -> dg.Definitions:
    """Bind ``tickwave`` and ``dbt`` for every asset, check and sensor."""
    return dg.Definitions(
        resources={
            "tickwave": TickwaveResource(),
            "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
        }
    )
