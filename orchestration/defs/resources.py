"""The resources every domain shares: Tickwave's settings and warehouse, the dbt CLI, and the IO manager.

Each is bound here, when the definitions load, and takes no run config: a launch (the UI's
launchpad, GraphQL, a schedule) names data (a window, a day, a partition in an op's own
config), never the program to run, a folder, a state dir, a database or the clock.
"""

from __future__ import annotations

import dagster as dg
from dagster_dbt import DbtCliResource

from orchestration.dbt_project import DBT_EXECUTABLE, dbt_project
from orchestration.resources import TickwaveResource, bound


@dg.definitions
def resources() -> dg.Definitions:
    """Bind ``tickwave``, ``dbt`` and ``io_manager`` for every asset, check and sensor."""
    return dg.Definitions(
        resources={
            "tickwave": bound(TickwaveResource(), "Tickwave's settings and warehouse, as the deployment sets them"),
            "dbt": bound(
                DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
                "the venv's dbt on the repository's project",
            ),
            # Dagster's own filesystem IO manager, writing under the instance's storage folder (its default),
            # with its base_dir fixed: a launch could otherwise point it at any folder.
            "io_manager": dg.fs_io_manager.configured({}, config_schema={}),
        }
    )
