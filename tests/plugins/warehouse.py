"""Session fixtures for the real embedded warehouse (ClickHouse HTTP on chdb).

One warehouse serves the run, started through the Supervisor exactly as `tickwave up`
does, on a free loopback port, with its state in the session's temp state dir; its
passwords are generated there at first start. Tests isolate their data by database
(``migrated_database`` once per run, or ``fresh_database`` per test). Every process
started here is stopped at session end, even on failure.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from adapters.endpoints import Endpoint
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from app.services.supervisor import Supervisor
from app.services.warehouse import WarehouseService
from tickwave.config import Settings, load_settings


def start_warehouse(state_dir: Path, **clickhouse: object) -> tuple[Supervisor, WarehouseService, Endpoint]:
    """Start an embedded warehouse for ``state_dir`` on free ports, HTTP and native (callers stop it)."""
    settings = load_settings(state_dir=state_dir, clickhouse={"port": 0, "native_port": 0, **clickhouse})
    supervisor = Supervisor(settings)
    service = WarehouseService(settings)
    started = supervisor.start(service)
    assert isinstance(started, Endpoint), "the test warehouse must be embedded, not external"
    return supervisor, service, started


@pytest.fixture(scope="session")
def warehouse_endpoint(state_dir: Path) -> Iterator[Endpoint]:
    """The real embedded warehouse, started once for the test session."""
    supervisor, service, endpoint = start_warehouse(state_dir)
    try:
        yield endpoint
    finally:
        supervisor.stop(service)


@pytest.fixture(scope="session")
def warehouse_settings(state_dir: Path, warehouse_endpoint: Endpoint) -> Settings:
    """Settings whose clients find the session warehouse through its endpoint record."""
    return load_settings(state_dir=state_dir)


@pytest.fixture(scope="session")
def migrated_database(warehouse_settings: Settings) -> str:
    """A database with every migration applied, shared by the session (use unique keys in it)."""
    database = f"tw_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    return database


@contextlib.contextmanager
def scratch_database(settings: Settings, prefix: str = "t") -> Iterator[str]:
    """An empty database of the caller's own, dropped when the block ends."""
    database = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = connect(settings, database="default")
    admin.command(f"CREATE DATABASE {database}")
    try:
        yield database
    finally:
        admin.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        admin.close()


@pytest.fixture
def fresh_database(warehouse_settings: Settings) -> Iterator[str]:
    """An empty database of this test's own, dropped afterwards."""
    with scratch_database(warehouse_settings) as database:
        yield database


@pytest.fixture
def warehouse_database(migrated_database: str) -> str:
    """The database ``warehouse`` opens: the shared migrated one (a folder's conftest may give its own)."""
    return migrated_database


@pytest.fixture
def warehouse(warehouse_settings: Settings, warehouse_database: str) -> Iterator[Client]:
    """A read-write client on ``warehouse_database``."""
    client = connect(warehouse_settings, database=warehouse_database)
    try:
        yield client
    finally:
        client.close()
