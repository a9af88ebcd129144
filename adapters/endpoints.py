"""Where a running embedded service can be reached: the records the supervisor leaves under the state dir.

A service's record ``run/<name>.json`` (pid, process start time, address, ports) is
written by the supervisor once the service is ready; its pid is trusted only if a live
process with that pid has the recorded start time, so a record left by a crash or a
reboot is removed instead of being mistaken for a running service. Clients (the bus,
the warehouse client) read records here; Tickwave's own processes tell the supervisor
they are ready with :func:`mark_ready`. Starting and stopping services is the composition
root's job (``app.services``).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    """The record a running service leaves in ``run/<name>.json``."""

    name: str
    pid: int
    process_started_at: float
    address: str
    ports: dict[str, int]
    started_at: str
    command: list[str]

    @property
    def uptime_s(self) -> float:
        """Seconds since the service was started."""
        return max(0.0, time.time() - datetime.fromisoformat(self.started_at).timestamp())


def free_port() -> int:
    """Return a TCP port on loopback that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def record_path(state_dir: Path, name: str) -> Path:
    """Return the endpoint record of service ``name``."""
    return state_dir / "run" / f"{name}.json"


def pid_path(state_dir: Path, name: str) -> Path:
    """Return the pid file service ``name`` has while it starts and runs."""
    return state_dir / "run" / f"{name}.pid"


def forget(state_dir: Path, name: str) -> None:
    """Remove the record and pid file of service ``name``."""
    record_path(state_dir, name).unlink(missing_ok=True)
    pid_path(state_dir, name).unlink(missing_ok=True)


def process_matches(pid: int, process_started_at: float) -> bool:
    """Return True when a live process ``pid`` was started at ``process_started_at``."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            reap(pid)
            return False
        return bool(abs(process.create_time() - process_started_at) < 1.0)
    except psutil.Error:
        return False


def reap(pid: int) -> None:
    """Wait for ``pid`` if it is an exited child of this process (a zombie until waited for)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def live_endpoint(state_dir: Path, name: str) -> Endpoint | None:
    """Return the live endpoint of ``name``, removing a stale or unreadable record if found."""
    record = record_path(state_dir, name)
    try:
        endpoint = Endpoint(**json.loads(record.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        logger.warning("service=%s removing unreadable record %s", name, record)
        forget(state_dir, name)
        return None
    if process_matches(endpoint.pid, endpoint.process_started_at):
        return endpoint
    logger.warning("service=%s removing stale record (pid %d is gone)", name, endpoint.pid)
    forget(state_dir, name)
    return None


def ready_marker(state_dir: Path, name: str) -> Path:
    """The file process ``name`` writes once it is ready."""
    return state_dir / "run" / f"{name}.ready"


def mark_ready(state_dir: Path, name: str) -> None:
    """Tell the supervisor that process ``name`` is ready (called by the process itself)."""
    marker = ready_marker(state_dir, name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(f"{os.getpid()}\n")
