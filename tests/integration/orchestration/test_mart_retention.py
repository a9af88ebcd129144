"""The dbt marts' TTLs from the retention table, read back from each table's DDL after real dbt runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from adapters.retention import mart_retention
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from adapters.warehouse.retention import table_ttls
from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_environment, dbt_vars
from tickwave.config import REGULATORY_MINIMUM_DAYS, Settings, load_settings

INCREMENTAL = "execution_quality_daily"  # created once, then altered by the post-hook when its TTL changes


def dbt_run(settings: Settings, database: str, target: Path) -> None:
    environment = {**os.environ, **dbt_environment(settings, database)}
    done = subprocess.run(
        [
            DBT_EXECUTABLE,
            "run",
            "--select",
            "+path:models/marts",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--vars",
            json.dumps(dbt_vars(settings)),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env=environment,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def mart_ttls(settings: Settings, database: str) -> dict[str, str | None]:
    client = connect(settings, database=database)
    try:
        ttls = table_ttls(client, database)
    finally:
        client.close()
    return {rule.table: ttls.get(rule.table, "missing") for rule in mart_retention(settings.retention)}


@pytest.mark.timeout(900)  # two dbt runs of 26 models: ~1 min alone, over 5 on a machine shared with other suites
def test_dbt_marts_when_built_then_each_tables_ddl_has_the_retention_tables_ttl_and_follows_a_change(
    warehouse_settings: Settings, fresh_database: str, tmp_path: Path
) -> None:
    migrate(warehouse_settings, database=fresh_database)
    changed = load_settings(
        state_dir=warehouse_settings.state_dir,
        retention={"table_days": {INCREMENTAL: 90, "pnl_daily": 0, "fct_fills": 2557}},
    )

    dbt_run(warehouse_settings, fresh_database, tmp_path / "target")
    built = mart_ttls(warehouse_settings, fresh_database)
    dbt_run(changed, fresh_database, tmp_path / "target")
    after = mart_ttls(changed, fresh_database)

    assert built == {rule.table: rule.ttl for rule in mart_retention(warehouse_settings.retention)}
    assert built["fct_orders"] == f"toDateTime(created_at) + toIntervalDay({REGULATORY_MINIMUM_DAYS})"  # compliance
    assert built["risk_events_daily"] == "toDateTime(day) + toIntervalDay(365)"
    assert after == {rule.table: rule.ttl for rule in mart_retention(changed.retention)}
    assert after[INCREMENTAL] == "toDateTime(day) + toIntervalDay(90)"  # the incremental table altered in place
    assert after["pnl_daily"] is None and after["fct_fills"] == "toDateTime(filled_at) + toIntervalDay(2557)"
