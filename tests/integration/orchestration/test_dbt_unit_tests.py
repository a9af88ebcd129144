"""dbt's unit tests run here, in ``make test``, since the scheduled builds leave them out.

Their rows are fixed in the project, so they answer the same on every scheduled run and cost the same
whatever the warehouse holds (``orchestration.defs.marts.assets.SCHEDULED_BUILD``). They need the
relations their models read, so the project is built (models and unit tests, no data tests) on a migrated,
empty database.
"""

from __future__ import annotations

from adapters.warehouse.migrate import migrate
from orchestration.dbt_project import run_dbt
from orchestration.defs.marts.assets import SCHEDULED_BUILD
from tickwave.config import Settings


def test_dbt_unit_tests_when_run_apart_from_the_schedules_then_every_one_passes(
    warehouse_settings: Settings, fresh_database: str
) -> None:
    migrate(warehouse_settings, database=fresh_database)

    listed = run_dbt(warehouse_settings, ["ls", "--resource-type", "unit_test", "--output", "name"], fresh_database)
    scheduled = run_dbt(warehouse_settings, ["ls", *SCHEDULED_BUILD[1:], "--output", "name"], fresh_database)
    built = run_dbt(warehouse_settings, ["build", "--exclude-resource-type", "test"], fresh_database)

    unit_tests = set(listed.stdout.split())
    assert len(unit_tests) >= 10, listed.stdout[-2000:] + listed.stderr[-2000:]
    assert unit_tests.isdisjoint(scheduled.stdout.split()), "a scheduled build would run a unit test"
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-2000:]
