"""The service's own lifecycle: kill -9 mid-insert, SIGTERM with requests in flight, restarts.

These tests own a warehouse of their own (its own state dir), since they kill it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from clickhouse_connect.driver.exceptions import ClickHouseError

from adapters.endpoints import LOOPBACK, Endpoint, free_port
from adapters.warehouse.client import connect
from app.services.supervisor import Supervisor
from app.services.warehouse import WarehouseService
from tests.plugins.warehouse import start_warehouse
from tickwave.config import Settings, load_settings

BATCH = 2_000
KILLED_AFTER_BATCHES = 5


class OwnWarehouse:
    """A warehouse a test may stop, kill and restart."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.supervisor, self.service, self.endpoint = start_warehouse(state_dir)

    @property
    def settings(self) -> Settings:
        return load_settings(state_dir=self.state_dir)

    def restart(self) -> Endpoint:
        self.supervisor, self.service, self.endpoint = start_warehouse(self.state_dir)
        return self.endpoint

    def kill_hard(self) -> None:
        os.killpg(self.endpoint.pid, signal.SIGKILL)
        psutil.Process(self.endpoint.pid).wait(timeout=10)

    def stop(self) -> None:
        self.supervisor.stop(self.service)


def has_exited(process: psutil.Process) -> bool:
    try:
        return bool(process.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def own_warehouse(tmp_path: Path) -> Iterator[OwnWarehouse]:
    warehouse = OwnWarehouse(tmp_path / "state")
    try:
        yield warehouse
    finally:
        Supervisor(warehouse.settings).stop(WarehouseService(warehouse.settings))


def _create_table(settings: Settings) -> None:
    client = connect(settings, database="default")
    client.command(
        "CREATE TABLE IF NOT EXISTS acks (batch UInt32, row UInt32) ENGINE = MergeTree ORDER BY (batch, row)"
    )
    client.close()


def rows_per_batch_after_restart(warehouse: OwnWarehouse) -> dict[int, int]:
    warehouse.restart()
    client = connect(warehouse.settings, database="default")
    try:
        return dict(client.query("SELECT batch, count() FROM acks GROUP BY batch").result_rows)
    finally:
        client.close()


def _insert_until_failure(settings: Settings, acknowledged: list[int], started: threading.Event) -> None:
    client = connect(settings, database="default", send_receive_timeout=10)
    batch = 0
    try:
        while True:
            rows = [[batch, row] for row in range(BATCH)]
            client.insert("acks", rows, column_names=["batch", "row"])
            acknowledged.append(batch)  # only after the server answered 200
            started.set()
            batch += 1
    except (ClickHouseError, OSError):
        return
    finally:
        client.close()


def test_warehouse_when_killed_during_inserts_then_every_acknowledged_row_survives(own_warehouse: OwnWarehouse) -> None:
    settings = own_warehouse.settings
    _create_table(settings)
    acknowledged: list[int] = []
    started = threading.Event()
    inserter = threading.Thread(target=_insert_until_failure, args=(settings, acknowledged, started))
    inserter.start()
    assert started.wait(30)
    deadline = time.monotonic() + 60  # killed mid-stream once a few batches are acknowledged, however busy the machine
    while len(acknowledged) < KILLED_AFTER_BATCHES and time.monotonic() < deadline:
        time.sleep(0.05)
    own_warehouse.kill_hard()
    inserter.join(timeout=30)

    per_batch = rows_per_batch_after_restart(own_warehouse)

    assert len(acknowledged) >= KILLED_AFTER_BATCHES
    missing = [batch for batch in acknowledged if per_batch.get(batch) != BATCH]
    assert not missing, f"acknowledged batches lost or partial after kill -9: {missing[:10]}"
    # At most the one unacknowledged batch in flight may also have landed (at-least-once).
    assert set(per_batch) - set(acknowledged) <= {len(acknowledged)}


def test_warehouse_when_sigterm_arrives_mid_requests_then_they_finish_and_it_exits_cleanly(
    own_warehouse: OwnWarehouse,
) -> None:
    settings = own_warehouse.settings
    _create_table(settings)
    results: dict[str, object] = {}

    def slow_query() -> None:
        client = connect(settings, database="default")
        try:
            results["slow"] = client.command("SELECT sleep(2), 'finished'")
        finally:
            client.close()

    acknowledged: list[int] = []
    started = threading.Event()
    query_thread = threading.Thread(target=slow_query)
    insert_thread = threading.Thread(target=_insert_until_failure, args=(settings, acknowledged, started))
    query_thread.start()
    insert_thread.start()
    assert started.wait(30)
    time.sleep(0.5)
    process = psutil.Process(own_warehouse.endpoint.pid)
    stopping_at = time.monotonic()
    own_warehouse.stop()  # SIGTERM, then waits for the process group
    stop_s = time.monotonic() - stopping_at
    query_thread.join(timeout=30)
    insert_thread.join(timeout=30)

    per_batch = rows_per_batch_after_restart(own_warehouse)

    assert results.get("slow") == ["0", "finished"]
    assert has_exited(process)
    assert stop_s < WarehouseService.stop_timeout_s, "the service had to be killed instead of stopping"
    assert all(per_batch.get(batch) == BATCH for batch in acknowledged)
    log = own_warehouse.supervisor.log_path("warehouse").read_text()
    assert "warehouse engine closed" in log and "Finished server process" in log


def test_serve_when_run_in_the_foreground_then_sigterm_exits_0_and_a_second_owner_is_refused(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TICKWAVE_STATE_DIR": str(tmp_path),
        "TICKWAVE_LOG_LEVEL": "INFO",
        "TICKWAVE_CLICKHOUSE_NATIVE_PORT": "0",
    }
    first_port, second_port = free_port(), free_port()
    command = [sys.executable, "-m", "warehouse_server", "serve", "--data-dir", str(tmp_path / "data")]
    first = subprocess.Popen([*command, "--port", str(first_port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: WarehouseService(load_settings(state_dir=tmp_path)).probe(f"{LOOPBACK}:{first_port}"))
        second = subprocess.run(
            [*command, "--port", str(second_port)], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        first.send_signal(signal.SIGTERM)
        first_code = first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    log = first.stderr.read() if first.stderr else ""

    assert first_code == 0, log[-2000:]
    assert "warehouse engine closed" in log
    assert second.returncode != 0
    assert "cannot open the warehouse directory" in second.stderr


def wait_until(predicate: Callable[[], bool], timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_serve_when_a_user_has_no_password_then_refuses_to_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TICKWAVE_STATE_DIR": str(tmp_path),
        "TICKWAVE_CLICKHOUSE_PASSWORD": "",
        "TICKWAVE_CLICKHOUSE_NATIVE_PORT": "0",
    }
    command = [sys.executable, "-m", "warehouse_server", "serve", "--port", str(free_port())]

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)

    assert result.returncode == 1
    assert "have no password" in result.stderr


def test_serve_when_local_dev_allows_no_password_then_anonymous_requests_are_the_service_user(tmp_path: Path) -> None:
    settings = load_settings(state_dir=tmp_path, clickhouse={"port": 0, "native_port": 0, "allow_no_password": True})
    supervisor, service = Supervisor(settings), WarehouseService(settings)
    endpoint = supervisor.start(service)
    assert isinstance(endpoint, Endpoint)
    try:
        anonymous = subprocess.run(
            [
                "curl",
                "-sS",
                "--data-binary",
                "CREATE TABLE anonymous (x UInt8) ENGINE = Memory",
                f"http://{endpoint.address}/",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        tables = subprocess.run(
            ["curl", "-sS", f"http://{endpoint.address}/?query=SHOW%20TABLES"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    finally:
        supervisor.stop(service)

    assert anonymous.stdout == ""
    assert "anonymous" in tables.stdout.split()
    assert not (tmp_path / "secrets").exists()
