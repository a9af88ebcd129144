"""dbt-clickhouse, unmodified, builds a small project (seed, view, table, incremental, dictionary) on the warehouse.

The dictionary's ``CLICKHOUSE`` source names the dbt user and its password, as dbt-clickhouse
writes every such source: the engine queries itself in process as that user.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from adapters.warehouse.client import connect, warehouse_url
from adapters.warehouse.credentials import resolve_credentials
from tickwave.config import Settings

PROJECT = Path(__file__).parents[2] / "fixtures" / "dbt_smoke"
DBT = Path(sys.executable).with_name("dbt")


def write_profile(directory: Path, settings: Settings, database: str) -> None:
    credentials = resolve_credentials(settings)
    address = urlsplit(warehouse_url(settings))
    profile = {
        "tickwave_smoke": {
            "target": "embedded",
            "outputs": {
                "embedded": {
                    "type": "clickhouse",
                    "driver": "http",
                    "host": address.hostname,
                    "port": address.port,
                    "user": credentials.user,
                    "password": credentials.password.get_secret_value(),
                    "schema": database,
                    "secure": False,
                    "compression": "lz4",
                    "threads": 2,
                }
            },
        }
    }
    (directory / "profiles.yml").write_text(yaml.safe_dump(profile))


def dbt(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        str(DBT),
        *args,
        "--project-dir",
        str(PROJECT),
        "--profiles-dir",
        str(tmp_path),
        "--target-path",
        str(tmp_path / "target"),
        "--log-path",
        str(tmp_path / "logs"),
    ]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        env={"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PATH": str(DBT.parent), "HOME": str(tmp_path)},
    )


@pytest.fixture
def profile_dir(tmp_path: Path, warehouse_settings: Settings, fresh_database: str) -> Path:
    write_profile(tmp_path, warehouse_settings, fresh_database)
    return tmp_path


def test_dbt_when_building_the_smoke_project_then_models_and_tests_pass(
    profile_dir: Path, warehouse_settings: Settings, fresh_database: str
) -> None:
    built = dbt(profile_dir, "build")
    rerun = dbt(profile_dir, "run", "--select", "ticks_incremental")

    assert built.returncode == 0, built.stdout[-3000:]
    assert "PASS=" in built.stdout and "ERROR=0" in built.stdout
    assert rerun.returncode == 0, rerun.stdout[-3000:]
    client = connect(warehouse_settings, database=fresh_database)
    try:
        stats = dict(client.query("SELECT symbol, tick_count FROM symbol_stats").result_rows)
        incremental_rows = client.command("SELECT count() FROM ticks_incremental")
        view_engine = client.command(
            f"SELECT engine FROM system.tables WHERE database = '{fresh_database}' AND name = 'stg_ticks'"
        )
        looked_up = client.command(f"SELECT dictGet('{fresh_database}.symbol_lookup', 'tick_count', 'EURUSD')")
    finally:
        client.close()
    assert stats == {"EURUSD": 3, "USDJPY": 2, "GBPUSD": 1}
    assert looked_up == 3
    assert incremental_rows == 6
    assert view_engine == "View"
