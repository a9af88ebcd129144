from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from app.services.processes import OrchestrationService, own_processes
from orchestration.dbt_project import DBT_RUN_TAG
from orchestration.service import (
    POSTGRES_URL_VARIABLE,
    commands,
    dagster_home,
    environment,
    memory_mb,
    restart_if_over,
    stop_processes,
    storage_description,
    workspace_loaded,
    write_workspace,
)
from tickwave.config import load_settings
from tickwave.errors import ServiceError


def test_own_processes_when_orchestration_enabled_then_dagster_runs_after_the_data_path_on_its_port(
    tmp_path: Path,
) -> None:
    settings = load_settings(state_dir=tmp_path, orchestration={"port": 13555})

    services = own_processes(settings)
    disabled = own_processes(load_settings(state_dir=tmp_path, orchestration={"enabled": False}))

    names = [service.name for service in services]
    dagster = services[names.index("orchestration")]
    assert names == ["streams", "execution", "audit", "orchestration", "supervisor"]  # the supervisor watches them all
    assert isinstance(dagster, OrchestrationService) and dagster.address == "http://127.0.0.1:13555"
    assert dagster.arguments == ["orchestrate", "--port", "13555"]
    assert "orchestration" not in {service.name for service in disabled}


def test_own_processes_when_launched_then_a_prometheus_target_only_for_those_that_serve_metrics(
    tmp_path: Path,
) -> None:
    settings = load_settings(state_dir=tmp_path)

    launched = {service.name: service.launch(tmp_path) for service in own_processes(settings)}  # type: ignore[attr-defined]
    targets = {path.stem for path in (tmp_path / "prometheus" / "targets").glob("*.json")}

    # Dagster's webserver serves no /metrics (its run outcomes are the supervisor's): no target Prometheus sees down
    assert "metrics" not in launched["orchestration"].ports
    assert targets == {"streams", "execution", "audit", "supervisor"}
    assert all("metrics" in launch.ports for name, launch in launched.items() if name != "orchestration")


def test_dagster_home_when_prepared_then_sqlite_under_the_state_dir_loopback_only_and_no_telemetry(
    tmp_path: Path,
) -> None:
    home = dagster_home(load_settings(state_dir=tmp_path))
    instance = yaml.safe_load((home / "dagster.yaml").read_text())
    webserver = commands(13555, home, tmp_path / "code.sock")["webserver"]

    assert home == tmp_path.resolve() / "data" / "dagster"
    assert instance["storage"]["sqlite"]["base_dir"].startswith(str(home))
    assert instance["compute_logs"]["config"]["base_dir"] == str(home / "storage")  # where the maintenance prunes
    assert instance["telemetry"] == {"enabled": False}
    assert webserver[webserver.index("-h") + 1] == "127.0.0.1"
    assert "TICKWAVE" not in " ".join(webserver) and "password" not in " ".join(webserver).lower()


def test_commands_when_started_then_one_code_server_on_a_socket_serves_the_webserver_and_the_daemon(
    tmp_path: Path,
) -> None:
    home = dagster_home(load_settings(state_dir=tmp_path))
    socket = tmp_path / "code.sock"

    workspace = yaml.safe_load(write_workspace(home, socket).read_text())
    lines = commands(13555, home, socket)
    instance = yaml.safe_load((home / "dagster.yaml").read_text())

    assert workspace["load_from"] == [{"grpc_server": {"socket": str(socket), "location_name": "orchestration"}}]
    server = lines["code server"]
    assert server[1:3] == ["api", "grpc"] and server[server.index("--socket") + 1] == str(socket)
    assert server[server.index("-m") + 1] == "orchestration.definitions" and "--port" not in server
    for name in ("webserver", "daemon"):  # neither loads the definitions itself: both read the workspace
        assert lines[name][lines[name].index("-w") + 1] == str(home / "workspace.yaml")
    # The daemons Tickwave has no use for stay off: no automation condition, no freshness policy.
    assert instance["auto_materialize"] == {"enabled": False, "use_sensors": False}
    assert instance["freshness"] == {"enabled": False}


def test_commands_when_read_only_is_the_default_then_the_webserver_refuses_mutations_unless_set_false(
    tmp_path: Path,
) -> None:
    home = dagster_home(load_settings(state_dir=tmp_path))
    default = load_settings(state_dir=tmp_path).orchestration.read_only
    full = load_settings(state_dir=tmp_path, orchestration={"read_only": False}).orchestration.read_only

    assert default is True
    assert "--read-only" in commands(13555, home, tmp_path / "s", default)["webserver"]
    assert "--read-only" not in commands(13555, home, tmp_path / "s", full)["webserver"]


def test_dbt_environment_when_dbt_starts_then_it_gets_the_warehouse_password_and_no_other_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestration.dbt_project import child_environment, dbt_environment_applied

    monkeypatch.setenv(POSTGRES_URL_VARIABLE, "postgresql://dagster:pg-secret@db/dagster")
    monkeypatch.setenv("TICKWAVE_KAFKA_PASSWORD", "kafka-secret")
    monkeypatch.delenv("DBT_CLICKHOUSE_PASSWORD", raising=False)
    before = dict(os.environ)
    dbt = {"DBT_CLICKHOUSE_PASSWORD": "warehouse-secret", "DBT_CLICKHOUSE_HOST": "127.0.0.1"}

    child = child_environment(dbt)
    with dbt_environment_applied(dbt):
        during = dict(os.environ)

    assert child["DBT_CLICKHOUSE_PASSWORD"] == "warehouse-secret"
    assert POSTGRES_URL_VARIABLE not in child and "TICKWAVE_KAFKA_PASSWORD" not in child
    assert during == child  # what dagster-dbt copies while it starts dbt
    assert dict(os.environ) == before  # and after: the run's later steps and programs see no warehouse password


def test_dagster_home_when_postgres_url_is_set_then_storage_names_the_variable_and_only_the_environment_holds_it(
    tmp_path: Path,
) -> None:
    url = "postgresql://dagster:s3cret-Pw@db.internal:6432/dagster"
    settings = load_settings(state_dir=tmp_path, orchestration={"postgres_url": url})

    home = dagster_home(settings)
    written = (home / "dagster.yaml").read_text()
    variables = environment(settings, home)
    sqlite = environment(load_settings(state_dir=tmp_path), home)

    assert POSTGRES_URL_VARIABLE == "TICKWAVE_ORCHESTRATION_POSTGRES_URL"
    assert yaml.safe_load(written)["storage"] == {"postgres": {"postgres_url": {"env": POSTGRES_URL_VARIABLE}}}
    assert "s3cret-Pw" not in written and "sqlite" not in written
    assert variables[POSTGRES_URL_VARIABLE] == url and variables["DAGSTER_HOME"] == str(home)
    assert POSTGRES_URL_VARIABLE not in sqlite
    assert "s3cret-Pw" not in " ".join(" ".join(line) for line in commands(13555, home, tmp_path / "s").values())
    assert storage_description(settings, home) == "PostgreSQL at db.internal:6432/dagster"


def test_dbt_vars_when_built_from_settings_then_each_symbol_has_its_registry_lot_pip_and_currencies(
    tmp_path: Path,
) -> None:
    from orchestration.dbt_project import dbt_vars

    default = dbt_vars(load_settings(state_dir=tmp_path))["instruments"]
    configured = dbt_vars(
        load_settings(state_dir=tmp_path, symbols={"XAUUSD": {"digits": 2, "tick_size": 0.01, "contract_size": 50}})
    )

    assert default["XAUUSD"] == {"contract_size": 100, "pip_size": 0.1, "base": "XAU", "quote": "USD"}
    assert default["USDJPY"] == {"contract_size": 100000, "pip_size": 0.01, "base": "USD", "quote": "JPY"}
    assert default["EURGBP"] == {"contract_size": 100000, "pip_size": 0.0001, "base": "EUR", "quote": "GBP"}
    assert configured["instruments"]["XAUUSD"]["contract_size"] == 50 and set(configured["instruments"]) == {"XAUUSD"}


def test_dbt_project_defaults_when_compared_with_the_registry_then_they_are_the_generated_vars(tmp_path: Path) -> None:
    # dbt run by hand reads dbt_project.yml's vars; Tickwave passes dbt_vars(settings). Both must say the same.
    import yaml

    from orchestration.dbt_project import DBT_PROJECT_DIR, dbt_vars

    written = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    generated = dbt_vars(load_settings(state_dir=tmp_path))

    assert written["instruments"] == generated["instruments"]
    assert written["account_currency"] == generated["account_currency"]


def _workspace(*entries: tuple[str, str]) -> dict[str, object]:
    # The shape of Dagster's answer to WORKSPACE_QUERY: (loadStatus, locationOrLoadError's type) per location.
    return {
        "data": {
            "workspaceOrError": {
                "__typename": "Workspace",
                "locationEntries": [
                    {
                        "name": "orchestration",
                        "loadStatus": status,
                        "locationOrLoadError": {"__typename": kind, "message": "boom"},
                    }
                    for status, kind in entries
                ],
            }
        }
    }


@pytest.mark.parametrize(
    ("answer", "ready"),
    [
        (_workspace(("LOADING", "RepositoryLocation")), False),  # the webserver answers before its code server
        (_workspace(), False),
        ({"data": {"workspaceOrError": {"__typename": "PythonError"}}}, False),
        (_workspace(("LOADED", "RepositoryLocation"), ("LOADING", "RepositoryLocation")), False),
        (_workspace(("LOADED", "RepositoryLocation")), True),
    ],
)
def test_workspace_loaded_when_a_location_is_still_loading_then_not_ready(
    answer: dict[str, object], ready: bool
) -> None:
    assert workspace_loaded(answer) is ready


def test_workspace_loaded_when_the_definitions_failed_to_import_then_the_error_is_raised() -> None:
    with pytest.raises(ServiceError, match="boom"):
        workspace_loaded(_workspace(("LOADED", "PythonError")))


def test_dagster_home_when_loaded_by_dagster_then_every_dbt_job_queues_behind_the_one_running(tmp_path: Path) -> None:
    # Two `dbt build`s at once (the 15-minute schedule and a launch from the UI) race to create the same tables.
    from dagster import DagsterInstance

    from orchestration.defs.marts.assets import DAILY_MARTS_JOB, MARTS_JOB, MODEL_PERFORMANCE_JOB

    home = dagster_home(load_settings(state_dir=tmp_path))
    with DagsterInstance.from_config(str(home)) as instance:
        queue = instance.run_coordinator.get_run_queue_config()  # type: ignore[attr-defined]

    assert [(limit["key"], limit["limit"]) for limit in queue.tag_concurrency_limits] == [(DBT_RUN_TAG, 1)]
    assert all(job.tags.get(DBT_RUN_TAG) for job in (MARTS_JOB, DAILY_MARTS_JOB, MODEL_PERFORMANCE_JOB))


# A stand-in for the daemon: a real process holding ~60 MB (written to, so resident) until it is stopped.
HOLDER = "import time; block = bytearray(60 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096]); time.sleep(600)"


def _holder() -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-c", HOLDER])
    deadline = time.monotonic() + 20
    while memory_mb(process.pid) < 60 and time.monotonic() < deadline:
        time.sleep(0.1)
    return process


@pytest.mark.parametrize(("limit_mb", "is_restarted"), [(30, True), (4000, False)])
def test_restart_if_over_when_the_daemon_passes_its_limit_then_stopped_and_started_again(
    limit_mb: int, is_restarted: bool
) -> None:
    first = _holder()
    processes = {"daemon": first}

    def start(name: str) -> None:
        processes[name] = _holder()

    try:
        restarted = restart_if_over(processes, "daemon", limit_mb, start)

        assert restarted is is_restarted
        assert (first.poll() is not None) is is_restarted  # the old one stopped (SIGTERM), not left behind
        assert (processes["daemon"] is not first) is is_restarted
        assert processes["daemon"].poll() is None
    finally:
        stop_processes(processes)
        first.kill()
        first.wait()
