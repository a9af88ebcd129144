"""Where a running embedded service can be reached: the records the supervisor leaves under the state dir.

A service's record ``run/<name>.json`` (pid, process start, address, ports) is
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
import random
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
_GIVEN: set[int] = set()  # the ports free_port handed out in this process


@dataclass(frozen=True)
class Endpoint:
    """The record a running service leaves in ``run/<name>.json``."""

    name: str
    pid: int
    started_after_boot_s: float
    address: str
    ports: dict[str, int]
    started_at: str
    command: list[str]

    @property
    def uptime_s(self) -> float:
        """Seconds since the service was started."""
        return max(0.0, time.time() - datetime.fromisoformat(self.started_at).timestamp())


def free_port() -> int:
    """Return a TCP port on loopback that is free right now, below the kernel's range for outgoing connections.

    A port the kernel picks (a bind to 0) comes from that range, where any outgoing connection
    may take it while the service given it restarts (a supervisor's restart then finds its own
    port in use); a port below the range is only ever taken by a listener.
    """
    low = _ephemeral_low()
    below = range(max(1024, low - 16_384), low)
    for port in random.sample(below, min(64, len(below))):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((LOOPBACK, port))
            except OSError:
                continue
        if port not in _GIVEN:  # never the same port twice to one process (its services bind them later)
            _GIVEN.add(port)
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # all taken: any free one
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _ephemeral_low() -> int:
    # The first port of the kernel's ephemeral range (Linux; 32768 is its default and IANA's range starts above).
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


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


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_start(pid: int) -> float:
    """Seconds from boot to the start of process ``pid``: fixed for the life of the process.

    Not the wall-clock start psutil's ``create_time()`` gives: on Linux that adds
    ``/proc/stat``'s ``btime``, a whole number of seconds the kernel recomputes from the
    wall clock at every read, so it moves by a second when the clock is adjusted and a
    live service would be taken for a stale record. Elsewhere psutil's value is used.

    Raises:
        psutil.NoSuchProcess: when ``pid`` does not exist.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            raise psutil.NoSuchProcess(pid) from None
        return float(psutil.Process(pid).create_time())
    # Field 22 (starttime, in clock ticks since boot), counted after the ")" closing the command name.
    return int(stat.rsplit(b")", 1)[1].split()[19]) / _CLOCK_TICKS


def process_matches(pid: int, started_after_boot_s: float) -> bool:
    """Return True when a live process ``pid`` started ``started_after_boot_s`` after boot."""
    try:
        if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            reap(pid)
            return False
        return abs(process_start(pid) - started_after_boot_s) < 0.5
    except (psutil.Error, OSError, ValueError, IndexError):
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
    if process_matches(endpoint.pid, endpoint.started_after_boot_s):
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
