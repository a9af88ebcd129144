"""`tickwave up` on the authenticated default, as a user runs it: SCRAM on loopback, a principal per process.

The commands a user types (`up`, `ingest`, `warehouse query`, `down`) in real subprocesses,
with no security setting at all: every service starts as its own principal, ticks sent by
`tickwave ingest` (as the ingest principal, its role) reach the warehouse through the
dataflow and the loader, a command naming a principal the broker does not know is refused,
and no process that `up` started holds a password (the Kafka principals' included) in its
command line or its environment (``/proc/<pid>/environ`` keeps what a process started with,
whatever it clears later).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import psutil
import pytest

from tests.integration.platform.test_cli_lifecycle import cli_env, run
from tickwave.topics import PRINCIPALS

__all__ = ["cli_env"]  # the fixture, used by name


@pytest.fixture
def secured_env(cli_env: dict[str, str]) -> dict[str, str]:
    """The lifecycle tests' state dir and ports, with the default security (no setting names it)."""
    assert not any(key.startswith("TICKWAVE_KAFKA_SECURITY") for key in cli_env)
    return cli_env


def secrets_of(state_dir: Path) -> dict[str, str]:
    """Every secret under the state dir: the brokers' passwords, the warehouse's, the signing keys."""
    folder = state_dir / "secrets"
    found = {path.name: path.read_text().strip() for path in (folder / "kafka").glob("*.password")}
    warehouse = json.loads((folder / "warehouse.json").read_text())
    found.update({f"warehouse {key}": value for key, value in warehouse.items()})
    found["control key"] = (folder / "control.key").read_text().strip()
    found["signals key"] = (folder / "signals.key").read_text().strip()
    return found


def processes_of(state_dir: Path) -> list[psutil.Process]:
    """The running processes started for this state dir (it is in their command line or environment)."""
    mine = []
    for process in psutil.process_iter():
        try:
            if str(state_dir) in " ".join(process.cmdline()) or str(state_dir) in process.environ().get(
                "TICKWAVE_STATE_DIR", ""
            ):
                mine.append(process)
        except psutil.Error:  # ended meanwhile, or not ours to read
            continue
    return mine


def test_up_when_no_security_setting_then_scram_on_loopback_each_principal_works_and_no_process_holds_a_secret(
    secured_env: dict[str, str],
) -> None:
    # Arrange
    state_dir = Path(secured_env["TICKWAVE_STATE_DIR"])
    up = run(secured_env, "up", timeout=240)
    assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]

    # Act: a command naming a principal the broker does not know, then ingest as its role
    unknown = run(
        {**secured_env, "TICKWAVE_KAFKA_USERNAME": "intruder"},
        "ingest",
        "--source",
        "sim",
        "--duration",
        "30s",
        "--speed",
        "max",
    )
    sent = run(
        secured_env,
        "ingest",
        "--source",
        "sim",
        "--duration",
        "30s",
        "--speed",
        "max",
    )
    match = re.search(r"([\d,]+) ticks, 0 dead letters", sent.stdout)
    assert sent.returncode == 0 and match, sent.stdout + sent.stderr
    ticks = int(match.group(1).replace(",", ""))
    deadline = time.monotonic() + 90
    stored = -1
    while stored != ticks and time.monotonic() < deadline:
        query = run(secured_env, "warehouse", "query", "SELECT count() FROM ticks FINAL")
        counted = re.search(r"│\s*(\d+)\s*│", query.stdout)
        assert query.returncode == 0 and counted, query.stdout + query.stderr
        stored = int(counted.group(1))
        time.sleep(1.0)
    processes = processes_of(state_dir)
    secrets = secrets_of(state_dir)
    (listeners,) = [
        line
        for path in state_dir.rglob("server.properties")
        for line in path.read_text().splitlines()
        if line.startswith("listeners=")
    ]

    # Assert
    assert unknown.returncode != 0 and "the embedded Kafka has no principal 'intruder'" in unknown.stdout + (
        unknown.stderr
    )
    assert ticks > 0 and stored == ticks  # ingest -> dataflow -> loader -> warehouse, each as its principal
    kafka_secrets = [name for name in secrets if name.endswith(".password")]
    assert listeners.startswith("listeners=SASL_PLAINTEXT://127.0.0.1:")  # SCRAM, loopback only
    assert len(kafka_secrets) == len(PRINCIPALS) + 1  # every principal's and admin's (no keystore: no TLS)
    assert len(secrets) == len(kafka_secrets) + 4  # two warehouse passwords, the control key and the signals key
    names = {" ".join(process.cmdline()[:4]) for process in processes}
    assert len(processes) >= 6, names  # kafka, the warehouse, streams (+ its Bytewax), execution, audit, supervisor
    leaks = []  # named, never shown: a failing run must not print the secret it found
    for process in processes:
        listing = " ".join(process.cmdline())
        environment = Path(f"/proc/{process.pid}/environ").read_bytes().decode(errors="replace")
        leaks += [(name, "command line", listing[:120]) for name, secret in secrets.items() if secret in listing]
        leaks += [(name, "environment", listing[:120]) for name, secret in secrets.items() if secret in environment]
    assert leaks == []
