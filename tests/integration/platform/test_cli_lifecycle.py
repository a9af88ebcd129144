"""`tickwave up | status | down | logs` as a user runs them: real subprocesses, a real broker."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from typer.testing import CliRunner

from adapters.bus import KafkaConnection, make_producer, resolve_bootstrap
from adapters.bus_credentials import ADMIN
from adapters.endpoints import free_port
from app.cli import app as cli_app
from app.demo import demo_ticks
from tests.integration.platform.test_bus import consume_all
from tickwave.config import load_settings
from tickwave.contracts import encode

TICKWAVE = str(Path(sys.executable).with_name("tickwave"))


def run(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([TICKWAVE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("TICKWAVE_")}
    env.update({"COLUMNS": "200", **extra})
    return env


@pytest.fixture
def cli_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Its own state dir and ports; `tickwave down` always runs at the end."""
    env = clean_env(
        TICKWAVE_STATE_DIR=str(tmp_path / "state"),
        TICKWAVE_KAFKA_PORT=str(free_port()),
        TICKWAVE_KAFKA_CONTROLLER_PORT=str(free_port()),
        TICKWAVE_CLICKHOUSE_PORT=str(free_port()),
        TICKWAVE_CLICKHOUSE_NATIVE_PORT=str(free_port()),
        TICKWAVE_ORCHESTRATION_ENABLED="false",  # Dagster under `up`: in test_supervision.py (it adds ~30 s)
    )
    yield env
    run(env, "down")


def exited(pid: int) -> bool:
    """True once the process is gone or only a zombie awaiting its parent's reaping."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def as_admin(env: dict[str, str]) -> KafkaConnection:
    """The embedded broker's super user, through the state dir's generated credentials."""
    return resolve_bootstrap(load_settings(state_dir=Path(env["TICKWAVE_STATE_DIR"]), kafka={"username": ADMIN}))


def broker_pid(env: dict[str, str]) -> int:
    record = Path(env["TICKWAVE_STATE_DIR"]) / "run" / "kafka.json"
    return int(json.loads(record.read_text())["pid"])


def test_cli_lifecycle_when_up_twice_restart_and_down_then_harmless_and_data_survives(
    cli_env: dict[str, str],
) -> None:
    address = f"127.0.0.1:{cli_env['TICKWAVE_KAFKA_PORT']}"
    before = run(cli_env, "status")
    assert before.returncode == 3 and "down" in before.stdout

    first = run(cli_env, "up")
    assert first.returncode == 0, first.stderr
    assert address in first.stdout and "created topics ticks" in first.stdout
    pid = broker_pid(cli_env)

    second = run(cli_env, "up")
    assert second.returncode == 0, second.stderr
    assert broker_pid(cli_env) == pid  # a second `up` reuses the running broker
    assert "created" not in second.stdout

    status = run(cli_env, "status")
    assert status.returncode == 0 and "up" in status.stdout and str(pid) in status.stdout
    # Health, not just a pid: every service answers or reports its progress itself.
    assert "degraded" not in status.stdout and "stalled" not in status.stdout, status.stdout
    assert "journal at" in status.stdout and "cursor lag" in status.stdout and "epoch" in status.stdout

    sent = demo_ticks(50, now_ms=1_700_000_000_000)
    producer = make_producer(as_admin(cli_env))  # the broker is the authenticated default
    for tick in sent:
        producer.produce("ticks", key=tick.symbol.encode(), value=encode(tick))
    assert producer.flush(10) == 0

    down = run(cli_env, "down")
    assert down.returncode == 0 and "stopped: supervisor, audit, execution, streams, warehouse, kafka" in down.stdout
    assert exited(pid)
    assert run(cli_env, "status").returncode == 3
    # A normal stop reads as one: each service says it stopped, and nothing reads like a crash.
    for service in ("supervisor", "audit", "execution", "streams", "warehouse"):
        log = CliRunner().invoke(cli_app, ["logs", service, "--lines", "5000"], env=cli_env).output  # in-process
        assert "Traceback" not in log and "panicked" not in log, f"{service}:\n{log[-3000:]}"
        assert log.count(" stopped") == 1 + (service == "streams"), f"{service}:\n{log[-3000:]}"  # and its loader

    restarted = run(cli_env, "up")
    assert restarted.returncode == 0, restarted.stderr
    assert sorted(consume_all(as_admin(cli_env), "ticks", len(sent)), key=lambda t: t.time_ms) == sent

    logs = run(cli_env, "logs", "kafka", "--lines", "400")
    assert logs.returncode == 0 and "Kafka Server started" in logs.stdout

    # Stale records (the supervisor killed first, so that nothing restarts the broker): status says so, up recovers.
    for name in ("supervisor", "kafka"):
        pid = int(json.loads((Path(cli_env["TICKWAVE_STATE_DIR"]) / "run" / f"{name}.json").read_text())["pid"])
        os.kill(pid, signal.SIGKILL)
        while not exited(pid):
            time.sleep(0.1)
    stale = run(cli_env, "status")
    assert stale.returncode == 3 and "stale" in stale.stdout, stale.stdout
    recovered = run(cli_env, "up")
    assert recovered.returncode == 0, recovered.stderr
    assert broker_pid(cli_env) != pid


def test_cli_up_when_port_in_use_then_one_clear_message(cli_env: dict[str, str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", int(cli_env["TICKWAVE_KAFKA_PORT"])))
        holder.listen()

        result = run(cli_env, "up")

    assert result.returncode == 1
    assert f"port 127.0.0.1:{cli_env['TICKWAVE_KAFKA_PORT']} is in use" in result.stderr
    assert "TICKWAVE_KAFKA_PORT" in result.stderr
    assert "Traceback" not in result.stderr
    assert "PLAINTEXT" not in result.stderr  # the authenticated default warns of nothing


def test_cli_up_and_status_when_kafka_asked_for_plaintext_then_each_warns_that_anyone_may_trade(
    cli_env: dict[str, str],
) -> None:
    plaintext = {**cli_env, "TICKWAVE_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT"}
    with socket.socket() as holder:  # `up` warns before it starts anything: no need to start it
        holder.bind(("127.0.0.1", int(cli_env["TICKWAVE_KAFKA_PORT"])))
        holder.listen()

        up = run(plaintext, "up")
    status = run(plaintext, "status")
    default_status = run(cli_env, "status")

    for result in (up, status):
        assert "the embedded Kafka runs PLAINTEXT" in result.stderr, result.stderr
        assert "any local process or user can write any topic" in " ".join(result.stderr.split())
    assert "PLAINTEXT" not in default_status.stderr


def test_cli_up_when_java_missing_then_says_what_to_install(cli_env: dict[str, str]) -> None:
    env = {**cli_env, "PATH": str(Path(sys.executable).parent)}
    env.pop("JAVA_HOME", None)

    result = run(env, "up")

    assert result.returncode == 1
    assert "Java 17+ is needed" in result.stderr and "apt-get install openjdk-17" in result.stderr


def test_cli_when_config_invalid_then_exit_2_naming_the_key(tmp_path: Path) -> None:
    result = run(clean_env(TICKWAVE_STATE_DIR=str(tmp_path), TICKWAVE_KAFKA_HEAP="1g"), "status")

    assert result.returncode == 2
    assert "TICKWAVE_KAFKA_HEAP: unknown setting" in result.stderr


def test_cli_config_show_when_secret_set_then_masked(tmp_path: Path) -> None:
    env = clean_env(
        TICKWAVE_STATE_DIR=str(tmp_path),
        TICKWAVE_CLICKHOUSE_PASSWORD="s3cret-value",
        TICKWAVE_ORCHESTRATION_POSTGRES_URL="postgresql://dagster:pg-s3cret@127.0.0.1/dagster",
    )

    result = run(env, "config", "show", "--json")
    table = run(env, "config", "show")

    assert result.returncode == 0 and table.returncode == 0
    assert "s3cret" not in result.stdout + table.stdout
    assert '"password": "********"' in result.stdout and '"postgres_url": "********"' in result.stdout


def test_cli_config_retention_when_set_by_environment_then_shown_and_a_short_compliance_table_refused(
    tmp_path: Path,
) -> None:
    shown = run(
        clean_env(TICKWAVE_STATE_DIR=str(tmp_path), TICKWAVE_RETENTION_TABLE_DAYS='{"ticks": 30}'),
        "config",
        "retention",
    )
    refused = run(
        clean_env(TICKWAVE_STATE_DIR=str(tmp_path), TICKWAVE_RETENTION_TABLE_DAYS='{"orders": 30}'),
        "config",
        "retention",
    )

    assert shown.returncode == 0, shown.stderr
    assert "| `ticks` | 30 days | `inserted_at` |" in shown.stdout
    assert "| `orders` | 1827 days | `inserted_at` | yes |" in shown.stdout
    assert refused.returncode != 0
    assert "retention.table_days.orders = 30: a compliance table keeps rows at least 1827 days" in refused.stderr


def test_cli_when_external_kafka_configured_then_nothing_started(tmp_path: Path) -> None:
    env = clean_env(
        TICKWAVE_STATE_DIR=str(tmp_path),
        TICKWAVE_KAFKA_BOOTSTRAP="10.255.255.1:9092",
        TICKWAVE_KAFKA_SECURITY_PROTOCOL="PLAINTEXT",
    )

    status = run(env, "status")

    assert "external" in status.stdout and "10.255.255.1:9092" in status.stdout
    assert not (tmp_path / "run" / "kafka.json").exists()


def test_cli_help_when_any_command_then_documented() -> None:
    installed = run(clean_env(), "--help")  # the installed entry point, as a user starts it
    assert installed.returncode == 0 and "Usage" in installed.stdout

    runner = CliRunner()  # each command's help in this process: one interpreter start, not eight
    for args in (
        ["up", "--help"],
        ["down", "--help"],
        ["status", "--help"],
        ["logs", "--help"],
        ["config", "show", "--help"],
        ["topics", "create", "--help"],
        ["demo", "--help"],
    ):
        result = runner.invoke(cli_app, args, env=clean_env())
        assert result.exit_code == 0, args
        assert "Usage" in result.output, args
