"""A warehouse database holding what the orchestration works on, and Dagster's definitions bound to it.

The database (one per session, migrated like production) holds the streams' real bars and
features (the models tests' deterministic ticks through the Bytewax dataflow) for training,
and a small synthetic trading day (``testkit.synthetic_day``: ticks, bars, predictions,
signals, orders in two states each, fills, denials, risk events, a registry row) for the
marts and the checks. Dagster runs in process on an ephemeral instance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError
from dagster_dbt import DbtCliResource

from adapters.endpoints import free_port, ready_marker
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from orchestration.dbt_project import DBT_EXECUTABLE, dbt_project
from orchestration.resources import TickwaveResource
from testkit.synthetic_day import SyntheticDay, write_synthetic_day
from tests.integration.models.conftest import MODELS, RANGE_MS, SYMBOLS, run_streams, ticks, write
from tickwave.config import Settings
from tickwave.contracts import encode

TICKWAVE = str(Path(sys.executable).with_name("tickwave"))
SYNTHETIC_DAY = datetime(2026, 11, 20, tzinfo=UTC)
SYNTHETIC_TICKS = 100_000
SYNTHETIC_ORDERS = 2_000
MODEL_ID = "m_orchestration"


@dataclass(frozen=True)
class Warehouse:
    """A migrated database of this session's own and what was written into it."""

    settings: Settings
    database: str
    day: SyntheticDay | None


@lru_cache(maxsize=1)
def streams_rows() -> tuple[Any, ...]:
    """The dataflow's bars and features from the models tests' ticks (run once per session)."""
    out = run_streams([encode(tick) for tick in ticks()], None)
    return (*out["bars"], *out["features"])


def new_database(settings: Settings, *, orders: int = SYNTHETIC_ORDERS) -> Warehouse:
    """Create a database holding the streams' rows and a synthetic day (the caller drops it)."""
    database = f"orch_{uuid.uuid4().hex[:8]}"
    migrate(settings, database=database)
    write(settings, database, list(streams_rows()))
    client = connect(settings, database=database)
    try:
        day = write_synthetic_day(client, SYNTHETIC_DAY, SYNTHETIC_TICKS, orders, challenger=True)
    finally:
        client.close()
    return Warehouse(settings, database, day)


def drop(settings: Settings, database: str) -> None:
    # A scheduled run stopped with its Dagster may still have a dbt request on the wire that
    # creates a view while the database is dropped (DATABASE_NOT_EMPTY, code 219): drop again.
    client = connect(settings, database="default")
    try:
        for attempt in range(5):
            try:
                client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
                return
            except DatabaseError as error:
                if "Code: 219" not in str(error) or attempt == 4:
                    raise
                time.sleep(1.0)
    finally:
        client.close()


@pytest.fixture(scope="session")
def models_environment() -> Iterator[None]:
    """Small, fast training settings (the models tests' own), read by the resource from the environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in MODELS.items():
            patch.setenv(f"TICKWAVE_MODELS_{name.upper()}", str(value))
        # The promotion's P&L runs through the execution engine: the features' synthetic hours
        # end an hour before the run, which the fx calendar closes on a weekend.
        patch.setenv("TICKWAVE_MARKET_HOURS", "always")
        yield


@pytest.fixture(scope="session")
def orchestration_warehouse(warehouse_settings: Settings, models_environment: None) -> Iterator[Warehouse]:
    """The session's database: the streams' features and bars plus a synthetic trading day."""
    warehouse = new_database(warehouse_settings)
    try:
        yield warehouse
    finally:
        drop(warehouse_settings, warehouse.database)


@pytest.fixture(scope="session")
def definitions() -> dg.Definitions:
    """Tickwave's Dagster definitions, loaded as `dagster` and `tickwave orchestrate` load them."""
    from orchestration.definitions import defs

    return defs()


def resources_for(warehouse: Warehouse) -> dict[str, Any]:
    """The definitions' resources, pointed at ``warehouse`` (state dir and database only: no secret)."""
    return {
        "tickwave": TickwaveResource(
            state_dir=str(warehouse.settings.state_path), database=warehouse.database, model_id=MODEL_ID
        ),
        "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
    }


def training_config() -> dict[str, Any]:
    """Run config of the training dataset: the streams' symbols and range."""
    config = {"symbols": list(SYMBOLS), "from_ms": RANGE_MS[0], "to_ms": RANGE_MS[1]}
    return {"ops": {"training_dataset": {"config": config}}}


def materialize(
    definitions: dg.Definitions, warehouse: Warehouse, selection: dg.AssetSelection, **options: Any
) -> dg.ExecuteInProcessResult:
    """Run ``selection`` of the definitions in process against ``warehouse`` (failures returned, not raised)."""
    assets: Sequence[Any] = [*(definitions.assets or []), *(definitions.asset_checks or [])]
    return dg.materialize(
        assets,
        selection=selection,
        resources=resources_for(warehouse),
        raise_on_error=False,
        instance=dg.DagsterInstance.ephemeral(),
        **options,
    )


def check_outcomes(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    """Map ``asset/check`` to (passed, severity) for every check evaluated in the run."""
    outcomes = {}
    for event in result.get_asset_check_evaluations():
        outcomes[event.asset_check_key.to_user_string()] = (event.passed, event.severity.value)
    return outcomes


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    """The asset keys materialized in the run."""
    return {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}


@dataclass(frozen=True)
class Orchestrate:
    """A running `tickwave orchestrate`: its process, port, log and the warehouse database it works on."""

    process: subprocess.Popen[bytes]
    port: int
    log: Path
    database: str


@contextmanager
def orchestrate(settings: Settings, log: Path, variables: Mapping[str, str] = {}) -> Iterator[Orchestrate]:
    """`tickwave orchestrate` on a free port over a new empty migrated database (so sensors find nothing to do).

    Started as a user starts it (a subprocess, the settings in ``TICKWAVE_*`` variables, plus
    ``variables``); stopped with SIGTERM and its database dropped afterwards.
    """
    database = f"orch_ui_{uuid.uuid4().hex[:8]}"
    migrate(settings, database=database)
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("TICKWAVE_")}
    env.update(TICKWAVE_STATE_DIR=str(settings.state_path), TICKWAVE_CLICKHOUSE_DATABASE=database, **variables)
    ready = ready_marker(settings.state_path, "orchestration")
    ready.unlink(missing_ok=True)  # a former start's
    with log.open("wb") as output:
        process = subprocess.Popen(
            [TICKWAVE, "orchestrate", "--port", str(port)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 240
        while not ready.exists():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "Dagster did not become ready in 240 s"
            time.sleep(1)
        yield Orchestrate(process, port, log, database)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        drop(settings, database)
