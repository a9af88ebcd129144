"""A real MLflow tracking server for the tests: SQLite backend, local artifacts, on loopback.

Started once per run (per xdist worker) by ``mlflow server`` from the dev group, in its own
process group so that stopping it stops its uvicorn worker too; its directory is removed
afterwards. The fixture returns while the server boots (imports and the SQLite schema take
tens of CPU seconds): a test does other work meanwhile and calls ``ready()`` before using it.
Job execution (a second, idle process) is switched off: the tests need the tracking and
registry API and the UI only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.endpoints import LOOPBACK, free_port

START_TIMEOUT_S = 240  # imports and the SQLite schema's migrations: ~15 s on a quiet machine, minutes on a busy one


@dataclass(frozen=True)
class MlflowServer:
    """A running ``mlflow server``: its address, process and directory."""

    uri: str
    process: subprocess.Popen[bytes]
    root: Path
    deadline: float  # time.monotonic() by which it must answer

    def ready(self) -> MlflowServer:
        """Wait until the server answers (at most ``START_TIMEOUT_S`` from its start); return it."""
        while not self.is_up():
            if self.process.poll() is not None or time.monotonic() > self.deadline:
                raise RuntimeError(f"mlflow server did not start:\n{(self.root / 'server.log').read_text()[-3000:]}")
            time.sleep(0.5)
        return self

    def is_up(self) -> bool:
        """True when the server answers its health check."""
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (OSError, urllib.error.URLError):
            return False


def start_mlflow(root: Path) -> MlflowServer:
    """Start ``mlflow server`` on a free loopback port with its store under ``root`` (booting: see ``ready``)."""
    port = free_port()
    log = (root / "server.log").open("wb")
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    environment = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True)
    return MlflowServer(f"http://{LOOPBACK}:{port}", process, root, time.monotonic() + START_TIMEOUT_S)


def stop_mlflow(server: MlflowServer) -> None:
    """Stop the server's process group (SIGTERM, then SIGKILL after 20 s)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):  # the uvicorn worker, had it outlived its parent
        os.killpg(server.process.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def mlflow_server() -> Iterator[MlflowServer]:
    """The real MLflow tracking server, started once for the test session (call ``ready()`` before use)."""
    root = Path(tempfile.mkdtemp(prefix="tickwave-mlflow-"))
    server = start_mlflow(root)
    try:
        yield server
    finally:
        stop_mlflow(server)
        shutil.rmtree(root, ignore_errors=True)
