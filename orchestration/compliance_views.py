"""Build the dbt compliance views (and what they read) against a warehouse database."""

from __future__ import annotations

from orchestration.dbt_project import run_dbt
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
    done = run_dbt(settings, [command, "--select", SELECTOR if command == "run" else SELECTOR[1:]], database)
    if done.returncode != 0:
        raise ServiceError(f"dbt {command} of the compliance views failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
