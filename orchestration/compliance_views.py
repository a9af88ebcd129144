"""Build the dbt compliance views (and what they read) against a warehouse database."""

from __future__ import annotations

import json
import os
import subprocess

from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_environment, dbt_vars
from tickwave.config import Settings
from tickwave.errors import ServiceError

SELECTOR = "+path:models/compliance"


def build_compliance_views(settings: Settings, database: str | None = None, command: str = "run") -> None:
    """Run ``dbt run --select +path:models/compliance`` (the marts the views read are rebuilt too).

    ``command="test"`` runs the compliance models' data and unit tests instead (of the
    compliance models only).

    Raises:
        ServiceError: with dbt's output when the run fails.
    """
    environment = {**os.environ, **dbt_environment(settings, database), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                   "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}  # fmt: skip
    done = subprocess.run(
        [DBT_EXECUTABLE, command, "--select", SELECTOR if command == "run" else SELECTOR[1:],
         "--project-dir", str(DBT_PROJECT_DIR), "--vars", json.dumps(dbt_vars(settings)), "--quiet"],
        capture_output=True, text=True, timeout=1800, check=False, env=environment,
    )  # fmt: skip
    if done.returncode != 0:
        raise ServiceError(f"dbt {command} of the compliance views failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
