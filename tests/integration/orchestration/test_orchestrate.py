"""`tickwave orchestrate` as a user runs it: a subprocess, Dagster's GraphQL API, its UI in headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from adapters.endpoints import free_port
from adapters.warehouse.migrate import migrate
from orchestration.automation_status import automations
from orchestration.client import run_job
from tests.integration.orchestration.conftest import drop
from tests.integration.orchestration.test_definitions import SNAPSHOT_SCHEDULES, SNAPSHOT_SENSORS
from tickwave.config import Settings

TICKWAVE = str(Path(sys.executable).with_name("tickwave"))
ARTIFACTS = Path(__file__).parents[2] / "artifacts"
ASSETS_QUERY = "{ assetNodes { assetKey { path } } }"


@dataclass(frozen=True)
class Orchestrator:
    process: subprocess.Popen[bytes]
    port: int
    log: Path


def graphql(port: int, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=body,
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


@pytest.fixture(scope="module")
def orchestrator(warehouse_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orchestrator]:
    """`tickwave orchestrate` on a free port over an empty migrated database (so sensors find nothing to do)."""
    database = f"orch_ui_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    port = free_port()
    log = tmp_path_factory.mktemp("orchestrate") / "orchestrate.log"
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("TICKWAVE_")}
    env.update(TICKWAVE_STATE_DIR=str(warehouse_settings.state_path), TICKWAVE_CLICKHOUSE_DATABASE=database)
    with log.open("wb") as output:
        process = subprocess.Popen([TICKWAVE, "orchestrate", "--port", str(port)], env=env, stdout=output,
                                   stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        ready = warehouse_settings.state_path / "run" / "orchestration.ready"
        while not ready.exists():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "Dagster did not become ready in 240 s"
            time.sleep(1)
        yield Orchestrator(process, port, log)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        drop(warehouse_settings, database)


def test_orchestrate_when_running_then_graphql_lists_the_assets_and_a_launched_run_succeeds(
    orchestrator: Orchestrator,
) -> None:
    nodes = graphql(orchestrator.port, ASSETS_QUERY)["data"]
    keys = {"/".join(node["assetKey"]["path"]) for node in nodes["assetNodes"]}  # type: ignore[index]

    outcome = run_job(f"http://127.0.0.1:{orchestrator.port}", "dbt_marts", timeout_s=240)

    assert {"fct_orders", "pnl_daily", "trained_model", "tickwave/ticks", "tickwave/features"} <= keys
    assert outcome.is_success, (outcome, orchestrator.log.read_text()[-3000:])
    assert outcome.url.endswith(f"/runs/{outcome.run_id}")


def test_orchestrate_when_the_ui_is_loaded_in_headless_chromium_then_the_asset_graph_shows_the_assets(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    graphql(orchestrator.port, "mutation { setNuxSeen }")  # dismiss the community pop-up
    url = f"http://127.0.0.1:{orchestrator.port}/locations/orchestration/asset-groups/marts"
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'chromium'}",
             "--virtual-time-budget=30000", "--window-size=3840,2400"]  # fmt: skip
    dom = subprocess.run(["chromium", *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120,
                         check=False).stdout  # fmt: skip
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "dagster_asset_graph.png"
    subprocess.run(["chromium", *flags, f"--screenshot={screenshot}", url], capture_output=True, timeout=120,
                   check=False)  # fmt: skip

    assert all(name in dom for name in ("fct_orders", "fct_round_trips", "pnl_daily", "execution_quality")), dom[-2000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000


def test_automations_when_read_from_a_fresh_orchestrate_then_every_schedule_runs_and_reports_tick_at_0030_utc(
    orchestrator: Orchestrator,
) -> None:
    now = datetime.now(UTC)

    found = {item.name: item for item in automations(f"http://127.0.0.1:{orchestrator.port}")}

    assert set(found) == set(SNAPSHOT_SCHEDULES) | set(SNAPSHOT_SENSORS)
    assert {name: item.status for name, item in found.items()} == dict.fromkeys(found, "RUNNING")
    reports = found["compliance_reports_daily"]
    assert reports.cadence == "30 0 * * * UTC"
    assert reports.next_tick_at is not None and (reports.next_tick_at.hour, reports.next_tick_at.minute) == (0, 30)
    assert now < reports.next_tick_at <= now + timedelta(days=1)
    assert found["pipeline_runs_recorded"].kind == "sensor" and found["quality_hourly"].kind == "schedule"


def test_orchestrate_when_sigterm_then_webserver_and_daemon_stop_and_it_exits_zero(orchestrator: Orchestrator) -> None:
    children = psutil.Process(orchestrator.process.pid).children(recursive=True)

    orchestrator.process.send_signal(signal.SIGTERM)
    code = orchestrator.process.wait(timeout=60)

    assert code == 0, orchestrator.log.read_text()[-3000:]
    assert len(children) >= 2
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [process.cmdline() for process in alive]
