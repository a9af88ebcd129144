"""Fixtures of the warehouse integration tests: the credentials, a canary file, the secrets file."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.warehouse.credentials import Credentials, resolve_credentials, secrets_path
from adapters.warehouse.migrate import migrate
from tests.integration.warehouse.analyst import CANARY_TEXT
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
