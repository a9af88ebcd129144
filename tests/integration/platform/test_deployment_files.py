"""The deployment files in ``deploy/``: loaded by the tools that run them, and in step with the supervisor.

The Compose file is loaded by compose-go (the library Docker Compose is built on: the Compose
specification's schema, interpolation, normalisation) through ``deploy/composecheck``; the
systemd units by ``systemd-analyze verify``. Each Tickwave process they run must be started
with the command the supervisor uses (:func:`app.services.processes.own_processes`), so a
renamed command cannot leave them behind.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.services.processes import OwnProcessService, own_processes
from tickwave.config import load_settings

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"
SERVER_COMMANDS = {"warehouse": ["warehouse", "serve"]}  # the embedded warehouse, as `tickwave up` serves it


def supervised_commands(state_dir: Path) -> dict[str, list[str]]:
    """Each Tickwave process's arguments to ``tickwave``, as the supervisor starts it (the supervisor itself aside)."""
    settings = load_settings(state_dir=state_dir, supervision={"enabled": False})
    services = [service for service in own_processes(settings) if isinstance(service, OwnProcessService)]
    return {service.name: service.arguments for service in services} | SERVER_COMMANDS


@pytest.fixture(scope="module")
def composecheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.fail("Go is a prerequisite (make prereqs): it builds deploy/composecheck")
    binary = tmp_path_factory.mktemp("composecheck") / "composecheck"
    subprocess.run(
        [go, "build", "-mod=readonly", "-o", str(binary), "."], cwd=DEPLOY / "composecheck", check=True, timeout=600
    )
    return binary


def load_compose(binary: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(binary), str(path)], capture_output=True, text=True, timeout=60, check=False)


def test_compose_file_loads_and_runs_the_supervisors_commands(composecheck: Path, tmp_path: Path) -> None:
    loaded = load_compose(composecheck, DEPLOY / "compose.yaml")
    assert loaded.returncode == 0, loaded.stderr
    services: dict[str, dict[str, Any]] = json.loads(loaded.stdout)

    expected = supervised_commands(tmp_path)
    addresses = {"TICKWAVE_STATE_DIR", "TICKWAVE_KAFKA_BOOTSTRAP", "TICKWAVE_CLICKHOUSE_URL"}
    assert {name: services[name]["command"] for name in expected} == expected
    for name in expected:
        service = services[name]
        assert service["restart"] == "unless-stopped", name
        assert service["stop_signal"] == "SIGTERM", name
        assert "tickwave-state:/var/lib/tickwave" in service["volumes"], name
        assert addresses <= set(service["environment"]), name
    assert all(service["network_mode"] == "host" for service in services.values()), "every server binds 127.0.0.1"
    assert "setup" in services["execution"]["depends_on"], "the topics and the schema exist before a process starts"


def test_a_broken_compose_file_is_refused(composecheck: Path, tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    text = (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    broken.write_text(text.replace("condition: service_healthy", "condition: service_ready", 1), encoding="utf-8")

    loaded = load_compose(composecheck, broken)

    assert loaded.returncode != 0
    assert "condition" in loaded.stderr and "service_healthy" in loaded.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed here")
def test_systemd_units_verify_and_run_the_supervisors_commands(tmp_path: Path) -> None:
    venv = Path(sys.executable).parent.parent
    units = tmp_path / "units"
    units.mkdir()
    commands = {}
    for unit in sorted((DEPLOY / "systemd").iterdir()):
        text = unit.read_text(encoding="utf-8")
        (units / unit.name).write_text(text.replace("/opt/tickwave/.venv", str(venv)), encoding="utf-8")
        for line in text.splitlines():
            if line.startswith("ExecStart="):
                name = unit.name.removeprefix("tickwave-").removesuffix(".service")
                commands[name] = line.split("/tickwave ", 1)[1].split()

    verified = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(path) for path in units.iterdir())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == "", verified.stderr
    assert commands == supervised_commands(tmp_path)
    target = (DEPLOY / "systemd" / "tickwave.target").read_text(encoding="utf-8")
    assert all(f"tickwave-{name}.service" in target for name in commands)
