"""Fixtures of the warehouse integration tests: the credentials, a canary file, the secrets file, a landing table."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials, resolve_credentials, secrets_path
from adapters.warehouse.migrate import migrate
from tests.integration.warehouse.analyst import CANARY_TEXT
from tests.integration.warehouse.http import post
from tickwave.config import Settings


@pytest.fixture(scope="module")
def credentials(warehouse_settings: Settings) -> Credentials:
    return resolve_credentials(warehouse_settings)


@pytest.fixture(scope="module")
def canary(state_dir: Path) -> Path:
    path = state_dir / "canary.txt"
    path.write_text(CANARY_TEXT + "\n")
    return path


@pytest.fixture(scope="module")
def secrets(warehouse_settings: Settings, credentials: Credentials) -> tuple[Path, str]:
    return secrets_path(warehouse_settings), credentials.password.get_secret_value()


@pytest.fixture(scope="module")
def tickwave_database(warehouse_settings: Settings) -> str:
    migrate(warehouse_settings)  # the configured database, where the access log lands
    return warehouse_settings.clickhouse.database


@pytest.fixture
def table(warehouse_endpoint: Endpoint, credentials: Credentials, fresh_database: str) -> str:
    """An empty table ``(id UInt64, label String)`` in this test's own database."""
    name = f"{fresh_database}.landing"
    ddl = f"CREATE TABLE {name} (id UInt64, label String) ENGINE = MergeTree ORDER BY id"
    assert post(warehouse_endpoint.address, credentials, ddl.encode()).status == 200
    return name
