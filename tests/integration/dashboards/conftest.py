"""A warehouse database with demo-like data ending now, shared by the dashboards' integration tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from testkit.dashboard_sample import write_sample
from tickwave.config import Settings


@dataclass(frozen=True)
class BoardData:
    """Where the sample is and the moment it ends."""

    settings: Settings
    database: str
    now: datetime


@pytest.fixture(scope="session")
def board_data(warehouse_settings: Settings) -> Iterator[BoardData]:
    """200k ticks and 2,000 orders over the 24 h before now, with every table a board reads."""
    database = f"dash_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    client = connect(warehouse_settings, database=database)
    try:
        write_sample(client, ticks=200_000, orders=2_000, now=now)
        yield BoardData(warehouse_settings, database, now)
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()
