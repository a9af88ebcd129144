"""`tickwave orchestrate` as a user runs it: a subprocess, Dagster's GraphQL API, its UI in headless Chromium.

Its instance stores runs, events and ticks on PostgreSQL (``orchestration.postgres_url``, a
database of the run's throwaway cluster), as in production; the SQLite default runs under
`tickwave up` (``tests/integration/platform/test_supervision.py``) and the scheduler's test.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest
from dagster import DagsterEventType

from orchestration.automation_status import automations
from orchestration.client import run_job
from orchestration.service import POSTGRES_URL_VARIABLE
from tests.integration.chromium import artifact, chromium
from tests.integration.orchestration.conftest import orchestrate
from tests.integration.orchestration.test_definitions import SNAPSHOT_SCHEDULES, SNAPSHOT_SENSORS
from tests.plugins.postgres import PostgresCluster
from tickwave.config import Settings, load_settings

ASSETS_QUERY = "{ assetNodes { assetKey { path } } }"


@dataclass(frozen=True)
class Orchestrator:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    home: Path  # the Dagster instance's directory
    storage: str  # the PostgreSQL database holding its runs, events and ticks
    password: str  # of the role Dagster logs in as
    settings: Settings  # as the account running it has them: the state dir and PostgreSQL's URL

    def stored(self, cluster: PostgresCluster, statement: str, *parameters: object) -> list[tuple[object, ...]]:
        return cluster.execute(self.storage, statement, parameters)


def graphql(port: int, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read()))


@pytest.fixture(scope="module")
def orchestrator(
    warehouse_settings: Settings, postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Orchestrator]:
    """`tickwave orchestrate` on a free port over an empty migrated database, with its defaults (a read-only UI).

    Its Dagster storage is a new PostgreSQL database, its URL (password included) given as a user
    gives it: in the environment.
    """
    storage = f"dagster_{uuid.uuid4().hex[:8]}"
    postgres_url = postgres_cluster.create_database(storage)
    log = tmp_path_factory.mktemp("orchestrate") / "orchestrate.log"
    with orchestrate(warehouse_settings, log, {POSTGRES_URL_VARIABLE: postgres_url}) as running:
        password = urlsplit(postgres_url).password or ""
        settings = load_settings(
            state_dir=warehouse_settings.state_path,
            clickhouse={"database": running.database},
            orchestration={"postgres_url": postgres_url},
        )
        home = warehouse_settings.state_path / "data" / "dagster"
        yield Orchestrator(running.process, running.port, log, home, storage, password, settings)


# The whole tree's summed RSS once started (shared pages counted in each process: the strictest sum). Target
# 800 MB; measured 706-734 MB here (bench/orchestration.py: a code server each was 1,160-1,230 MB).
FOOTPRINT_LIMIT_MB = 800


def test_orchestrate_when_started_then_one_code_server_serves_both_and_the_tree_stays_under_800_mb(
    orchestrator: Orchestrator,
) -> None:
    root = psutil.Process(orchestrator.process.pid)
    measured = []  # (command line, RSS in MB) of every process of the tree
    for process in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):  # ended meanwhile
            measured.append((process.cmdline(), process.memory_info().rss / 2**20))

    code_servers = [line for line, _ in measured if ("api", "grpc") in set(pairwise(line))]
    total = sum(rss for _, rss in measured)

    assert len(code_servers) == 1, measured  # the webserver's and the daemon's own would make three
    assert total < FOOTPRINT_LIMIT_MB, [(" ".join(line[1:3]), round(rss)) for line, rss in measured]


def test_orchestrate_when_running_then_graphql_lists_the_assets_and_a_launched_run_succeeds_stored_in_postgresql(
    orchestrator: Orchestrator, postgres_cluster: PostgresCluster
) -> None:
    nodes = graphql(orchestrator.port, ASSETS_QUERY)["data"]
    keys = {"/".join(node["assetKey"]["path"]) for node in nodes["assetNodes"]}  # type: ignore[index]

    # The UI is read-only: the job goes through `dagster job launch`, as the account running the platform.
    outcome = run_job(orchestrator.settings, f"http://127.0.0.1:{orchestrator.port}", "dbt_marts", timeout_s=240)

    assert {"fct_orders", "pnl_daily", "trained_model", "tickwave/ticks", "tickwave/features"} <= keys
    assert outcome.is_success, (outcome, orchestrator.log.read_text()[-3000:])
    assert outcome.url.endswith(f"/runs/{outcome.run_id}")
    run = orchestrator.stored(
        postgres_cluster, "SELECT pipeline_name, status FROM runs WHERE run_id = %s", outcome.run_id
    )
    events = orchestrator.stored(
        postgres_cluster, "SELECT dagster_event_type FROM event_logs WHERE run_id = %s", outcome.run_id
    )
    assert run == [("dbt_marts", "SUCCESS")]
    assert {DagsterEventType.RUN_SUCCESS.value, DagsterEventType.ASSET_MATERIALIZATION.value} <= {
        kind for (kind,) in events
    }


def test_orchestrate_when_read_only_by_default_then_graphql_can_neither_launch_nor_delete_a_run(
    orchestrator: Orchestrator,
) -> None:
    from tests.integration.orchestration.test_launchpad import DELETE, launch

    launched = launch(orchestrator.port, "dbt_marts", {})
    deleted = graphql(orchestrator.port, DELETE, {"id": "00000000-0000-0000-0000-000000000000"})

    assert launched["__typename"] == "UnauthorizedError", launched
    assert deleted["data"]["deletePipelineRun"]["__typename"] == "UnauthorizedError", deleted  # type: ignore[index]


def test_orchestrate_when_the_ui_is_loaded_in_headless_chromium_then_the_asset_graph_shows_the_assets(
    orchestrator: Orchestrator, tmp_path: Path
) -> None:
    graphql(orchestrator.port, "mutation { setNuxSeen }")  # dismiss the community pop-up
    url = f"http://127.0.0.1:{orchestrator.port}/locations/orchestration/asset-groups/marts"
    screenshot = artifact("dagster_asset_graph.png")
    # One load of the page: its DOM printed and its screenshot taken once the virtual time budget has run.
    dom = chromium(
        url,
        tmp_path / "chromium",
        "--dump-dom",
        f"--screenshot={screenshot}",
        window="3840,2400",
        virtual_time_ms=30_000,
    )

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


def test_orchestrate_when_the_daemon_runs_then_its_heartbeats_and_sensor_ticks_are_stored_in_postgresql(
    orchestrator: Orchestrator, postgres_cluster: PostgresCluster
) -> None:
    deadline = time.monotonic() + 90  # the sensor daemon's first pass follows the code location's load
    ticks = orchestrator.stored(postgres_cluster, "SELECT status FROM job_ticks WHERE type = 'SENSOR'")
    while not ticks and time.monotonic() < deadline:
        time.sleep(1)
        ticks = orchestrator.stored(postgres_cluster, "SELECT status FROM job_ticks WHERE type = 'SENSOR'")

    daemons = orchestrator.stored(postgres_cluster, "SELECT daemon_type FROM daemon_heartbeats")

    assert ticks, orchestrator.log.read_text()[-3000:]
    assert {"SCHEDULER", "SENSOR"} <= {kind for (kind,) in daemons}


def test_orchestrate_when_storage_is_postgresql_then_its_password_is_in_no_command_line_file_log_or_ui(
    orchestrator: Orchestrator, postgres_cluster: PostgresCluster
) -> None:
    environments = {}  # of the webserver, the daemon and their code servers: the URL reaches Dagster there
    for child in psutil.Process(orchestrator.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):  # ended meanwhile
            environments[" ".join(child.cmdline()[:3])] = child.environ()
    command_lines = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):  # ended meanwhile, or not ours to read
            command_lines.append(" ".join(process.cmdline()))
    files = [path for path in orchestrator.home.rglob("*") if path.is_file()]
    logs = [path.read_text(errors="replace") for path in (orchestrator.log, postgres_cluster.log, *files)]
    logs += ["".join(text.split()) for text in logs]  # as printed, and with the console's line wrapping undone
    info = graphql(orchestrator.port, "{ instance { info } }")["data"]["instance"]["info"]  # type: ignore[index]

    assert sum("dagster-webserver" in line or "dagster-daemon" in line for line in environments) == 2, environments
    assert all(environment.get(POSTGRES_URL_VARIABLE) for environment in environments.values())
    assert POSTGRES_URL_VARIABLE in (orchestrator.home / "dagster.yaml").read_text()  # named, not written
    assert not [line for line in command_lines if orchestrator.password in line]
    assert not [text[-300:] for text in logs if orchestrator.password in text]
    assert "postgres" in info.lower() and orchestrator.password not in info
    printed = " ".join(orchestrator.log.read_text().split())  # where, without who
    assert f"storage: PostgreSQL at 127.0.0.1:{postgres_cluster.port}/{orchestrator.storage}" in printed


def test_orchestrate_when_sigterm_then_webserver_and_daemon_stop_and_it_exits_zero(orchestrator: Orchestrator) -> None:
    children = psutil.Process(orchestrator.process.pid).children(recursive=True)

    orchestrator.process.send_signal(signal.SIGTERM)
    code = orchestrator.process.wait(timeout=60)

    assert code == 0, orchestrator.log.read_text()[-3000:]
    assert len(children) >= 2
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, [process.cmdline() for process in alive]
