"""Tickwave's Dagster entry point: everything under ``orchestration/defs/<domain>/``.

``defs/training`` (dataset -> model -> promotion, nightly and on new data), ``defs/marts``
(every dbt model, every 15 minutes), ``defs/quality`` (the raw tables and their Great
Expectations checks, hourly) and ``defs/resources.py``. Load with
``dagster dev -m orchestration.definitions`` or ``tickwave orchestrate``.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    """Load every domain's definitions from the defs folder (dg's own loader); run each job's steps in one process.

    The executor's config is fixed (an empty shape): a launch sets no retries or markers.

    Dagster's default executor starts a process per step, and each paid ~13 s of imports
    (Great Expectations alone ~9 s) on the 2-core VM: the ten-step quality job took 204 s
    for 0.2 s of validation a table. In one process the imports are paid once per run.
    """
    loaded = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    executor = dg.in_process_executor.configured({}, config_schema={})
    return dg.Definitions.merge(loaded, dg.Definitions(executor=executor))
