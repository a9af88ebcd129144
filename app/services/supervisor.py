"""Start, watch and stop Tickwave's embedded services as background processes.

Each service owns, under the state directory:

- ``run/<name>.json``: its endpoint record (pid, process start time, address, ports);
  written only once the service is ready, so its presence means "was up";
- ``run/<name>.wanted``: the operator's intent "this service should run", written by
  :meth:`Supervisor.start` and removed only by :meth:`Supervisor.stop` (``tickwave down``).
  A stale endpoint record is removed by whoever finds it first (``tickwave status``, a
  client, the watcher), so the intent must not live in the record: the watcher restarts
  a wanted service whose process is gone, whenever it died;
- ``logs/<name>.log``: everything the process prints;
- ``data/<name>/``: its data, kept across restarts.

A pid is trusted only if a live process with that pid has the recorded start time, so
a stale record left by a crash or a reboot is detected and removed instead of being
mistaken for a running service.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

from adapters.endpoints import (
    LOOPBACK,
    Endpoint,
    forget,
    live_endpoint,
    pid_path,
    process_matches,
    process_start,
    reap,
    record_path,
)
from adapters.private_files import PRIVATE_UMASK
from tickwave.config import Settings
from tickwave.errors import ServiceError

logger = logging.getLogger(__name__)

# glibc's malloc gives each thread that contends an arena of its own (up to 8 per core), and
# an arena keeps its freed pages: the services' librdkafka, gRPC and engine threads grew
# their resident memory for an hour that way. Two arenas bound it; the operator's own
# environment wins.
ALLOCATOR_ENVIRONMENT = {"MALLOC_ARENA_MAX": "2"}


@dataclass(frozen=True)
class Launch:
    """How to start a service process: its command, extra environment and ports."""

    command: Sequence[str]
    address: str
    ports: Mapping[str, int]
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceStatus:
    """What ``tickwave status`` shows for one service."""

    name: str
    state: str  # "up", "down", "external", "stale" (a dead record was just removed)
    address: str | None = None
    pid: int | None = None
    uptime_s: float | None = None


class ManagedService(ABC):
    """An embedded service the supervisor can start, probe and stop."""

    name: str = ""
    stop_timeout_s: float = 30.0
    quorum: str | None = None  # services of one quorum start together: none is ready before a majority runs
    holds_data: bool = False  # its data directory holds the platform's data (status shows that volume's free disk)

    def __init__(self, settings: Settings) -> None:
        """Keep the settings the service is configured with."""
        self.settings = settings

    @property
    @abstractmethod
    def external_address(self) -> str | None:
        """The address of a user-provided replacement, or None to run the embedded one."""

    @property
    @abstractmethod
    def start_timeout_s(self) -> float:
        """How long to wait for readiness."""

    def check_prerequisites(self) -> None:  # noqa: B027 - optional hook
        """Raise ServiceError with the fix when something the service needs is missing."""

    def install(self) -> None:  # noqa: B027 - optional hook
        """Fetch what the service needs, once per machine (downloads into a cache)."""

    def prepare(self, data_dir: Path) -> None:  # noqa: B027 - optional hook
        """Do work in the service's data directory before each start (config files, formatting)."""

    def after_start(self) -> str | None:
        """Do what must follow every start (create topics, migrate); return a line to show."""
        return None

    @abstractmethod
    def launch(self, data_dir: Path) -> Launch:
        """Return the command that runs the service in the foreground."""

    @abstractmethod
    def probe(self, address: str) -> bool:
        """Return True once the service really answers at ``address``."""


@dataclass(frozen=True)
class _Spawned:
    """A service's process started and not yet ready."""

    service: ManagedService
    process: subprocess.Popen[bytes]
    launch: Launch
    started_after_boot_s: float
    log_path: Path


def ensure_port_free(port: int, what: str, setting: str) -> None:
    """Raise ServiceError naming the owner and the fix when ``port`` is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
            return
        except OSError:
            pass
    owner = _port_owner(port)
    raise ServiceError(
        f"{what} cannot start: port {LOOPBACK}:{port} is in use{owner}. "
        f"Stop that process, or choose another port with {setting}=<port> (0 picks a free one)."
    )


def _port_owner(port: int) -> str:
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                return f" by pid {conn.pid} ({psutil.Process(conn.pid).name()})"
    except (psutil.Error, OSError):
        pass
    return ""


class Supervisor:
    """Starts, stops and reports embedded services for one state directory."""

    def __init__(self, settings: Settings) -> None:
        """Use the state directory of ``settings``."""
        self.state_dir = settings.state_path
        self.run_dir = self.state_dir / "run"
        self.logs_dir = self.state_dir / "logs"

    def data_dir(self, service: ManagedService) -> Path:
        """Return (creating) the data directory of ``service``."""
        path = self.state_dir / "data" / service.name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def log_path(self, name: str) -> Path:
        """Return the log file of service ``name``."""
        return self.logs_dir / f"{name}.log"

    def _record_path(self, name: str) -> Path:
        return record_path(self.state_dir, name)

    def _pid_path(self, name: str) -> Path:
        return pid_path(self.state_dir, name)

    def endpoint(self, name: str) -> Endpoint | None:
        """Return the live endpoint of ``name``, removing a stale record if found."""
        return live_endpoint(self.state_dir, name)

    def _forget(self, name: str) -> None:
        forget(self.state_dir, name)

    def _group_path(self, name: str) -> Path:
        # The process group of the service's last start: kept until `stop` saw the whole group end,
        # whoever removed its record meanwhile.
        return self.run_dir / f"{name}.group"

    def _orphaned_group(self, name: str) -> int | None:
        """Return the process group of ``name`` when its leader is gone and other members still run.

        A child left behind by a leader that died (the flow's loader after a ``kill -9`` of the flow)
        keeps the group: `down` stops it like the leader. The kernel never gives a new process the id
        of a group that still has members, so the group is this service's.
        """
        try:
            pgid = int(self._group_path(name).read_text())
        except (FileNotFoundError, ValueError):
            return None
        try:
            is_leader_gone = psutil.Process(pgid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            is_leader_gone = True
        except psutil.Error:
            return None
        if is_leader_gone and _group_alive(pgid):
            logger.warning("service=%s its process %d is gone; stopping what is left of its group", name, pgid)
            return pgid
        return None

    def _wanted_path(self, name: str) -> Path:
        return self.run_dir / f"{name}.wanted"

    def is_wanted(self, name: str) -> bool:
        """Return True while ``name`` was started and not stopped since (it should be running)."""
        return self._wanted_path(name).exists()

    def is_starting(self, name: str) -> bool:
        """Return True while a start of ``name`` is in progress (its process runs, no record yet)."""
        return self._starting_pid(name) is not None

    def recorded_pid(self, name: str) -> int | None:
        """Return the pid in the record of ``name``, live or not (None without a readable record)."""
        try:
            return int(json.loads(self._record_path(name).read_text())["pid"])
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def _starting_pid(self, name: str) -> int | None:
        # A pid file without a record: a start in progress, or one that died half-way.
        try:
            pid, started = self._pid_path(name).read_text().split()
        except (FileNotFoundError, ValueError):
            return None
        return int(pid) if process_matches(int(pid), float(started)) else None

    def start(self, service: ManagedService) -> Endpoint | str:
        """Start ``service`` unless it already runs; wait until it is ready.

        Returns:
            The endpoint record, or the external address when the service is external.

        Raises:
            ServiceError: with the log tail and a fix when it cannot start.
        """
        return self.start_together([service])[0]

    def start_together(self, services: Sequence[ManagedService]) -> list[Endpoint | str]:
        """Start each of ``services`` that does not run yet, all before waiting for any to be ready.

        The nodes of a quorum (Kafka's controllers) become ready only once a majority of them
        runs: started one after the other, the first would wait for the others forever.

        Returns:
            Each service's endpoint record, or its external address when it is external.

        Raises:
            ServiceError: with the log tail and a fix when one cannot start (those started by
                this call are stopped again).
        """
        results: list[Endpoint | str | _Spawned] = []
        try:
            for service in services:  # one by one: a refused start still stops those spawned before it
                results.append(self._spawn(service))
            for index, spawned in enumerate(results):
                if isinstance(spawned, _Spawned):
                    results[index] = self._finish(spawned)
        except BaseException:
            for spawned in results:
                if isinstance(spawned, _Spawned):
                    _terminate_group(spawned.process.pid, spawned.service.stop_timeout_s)
                    reap(spawned.process.pid)
                    self._forget(spawned.service.name)
            raise
        return [result for result in results if not isinstance(result, _Spawned)]

    def _spawn(self, service: ManagedService) -> Endpoint | str | _Spawned:
        if service.external_address:
            return service.external_address
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._wanted_path(service.name).touch()  # before the process exists: a crash at any moment is seen
        existing = self.endpoint(service.name)
        if existing is not None:
            logger.info("service=%s already up at %s (pid %d)", service.name, existing.address, existing.pid)
            return existing
        leftover = self._starting_pid(service.name)
        if leftover is not None:
            raise ServiceError(
                f"{service.name}: a process (pid {leftover}) from an unfinished start is still running; "
                f"run `tickwave down` first"
            )
        service.check_prerequisites()
        service.install()
        data_dir = self.data_dir(service)
        service.prepare(data_dir)
        launch = service.launch(data_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_path(service.name)
        # Everything the service prints: its owner's only, whatever this process's umask.
        with os.fdopen(os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log_file:
            log_file.write(f"\n--- start {datetime.now(UTC).isoformat()} {' '.join(launch.command)}\n".encode())
            log_file.flush()
            process = subprocess.Popen(
                [*_default_signals(), *launch.command],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env={**ALLOCATOR_ENVIRONMENT, **os.environ, **launch.env},
                start_new_session=True,  # its own process group: `down` signals the whole group
                umask=PRIVATE_UMASK,  # every file it and its children write is the owner's only
            )
        started_after_boot_s = process_start(process.pid)
        self._pid_path(service.name).write_text(f"{process.pid} {started_after_boot_s}\n")
        self._group_path(service.name).write_text(f"{process.pid}\n")
        return _Spawned(service, process, launch, started_after_boot_s, log_path)

    def _finish(self, spawned: _Spawned) -> Endpoint:
        service, process, launch = spawned.service, spawned.process, spawned.launch
        self._wait_ready(service, process, launch.address, spawned.log_path)
        endpoint = Endpoint(
            name=service.name,
            pid=process.pid,
            started_after_boot_s=spawned.started_after_boot_s,
            address=launch.address,
            ports=dict(launch.ports),
            started_at=datetime.now(UTC).isoformat(),
            command=list(launch.command),
        )
        temporary = self._record_path(service.name).with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(endpoint), indent=2))
        temporary.replace(self._record_path(service.name))
        logger.info("service=%s up at %s (pid %d)", service.name, launch.address, process.pid)
        return endpoint

    def _wait_ready(
        self, service: ManagedService, process: subprocess.Popen[bytes], address: str, log_path: Path
    ) -> None:
        deadline = time.monotonic() + service.start_timeout_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServiceError(
                    f"{service.name} exited with code {process.returncode} while starting; "
                    f"last lines of {log_path}:\n{tail(log_path, 25)}"
                )
            if service.probe(address):
                return
            time.sleep(0.2)
        raise ServiceError(
            f"{service.name} did not become ready at {address} within {service.start_timeout_s:.0f} s; "
            f"last lines of {log_path}:\n{tail(log_path, 25)}"
        )

    def stop(self, service: ManagedService, timeout_s: float | None = None, *, is_restart: bool = False) -> bool:
        """Stop ``service`` with SIGTERM, escalating to SIGKILL after ``timeout_s`` (default: the service's own).

        Args:
            service: the service to stop.
            timeout_s: SIGTERM to SIGKILL.
            is_restart: the watcher stops it to start it again: it stays wanted.

        Returns:
            True if a process was stopped, False if it was not running.
        """
        return bool(self.stop_together([service], timeout_s, is_restart=is_restart))

    def stop_together(
        self, services: Sequence[ManagedService], timeout_s: float | None = None, *, is_restart: bool = False
    ) -> list[str]:
        """Stop ``services`` as :meth:`stop` does, all signalled before waiting for any.

        The nodes of a quorum stop together: stopped one after the other, the last ones would
        wait for a quorum that is gone until they are killed.

        Returns:
            The names of the services whose process was stopped.
        """
        running: list[tuple[ManagedService, int, float]] = []
        for service in services:
            if not is_restart:
                self._wanted_path(service.name).unlink(missing_ok=True)  # first: no watcher restarts it meanwhile
            endpoint = self.endpoint(service.name)
            pid = endpoint.pid if endpoint else self._starting_pid(service.name) or self._orphaned_group(service.name)
            if pid is None:
                self._forget(service.name)
                self._group_path(service.name).unlink(missing_ok=True)
                continue
            _signal_group(pid, signal.SIGTERM)
            running.append(
                (service, pid, time.monotonic() + (service.stop_timeout_s if timeout_s is None else timeout_s))
            )
        waiting = list(running)
        while waiting:
            for entry in list(waiting):
                service, pid, deadline = entry
                reap(pid)
                if _group_alive(pid):
                    # The last node of a quorum cannot have its orderly shutdown approved once a majority is gone.
                    members = [other for other, _pid, _deadline in running if other.quorum == service.quorum]
                    alive = [other for other, _pid, _deadline in waiting if other.quorum == service.quorum]
                    is_quorum_lost = service.quorum is not None and len(alive) <= len(members) // 2
                    if time.monotonic() < deadline and not is_quorum_lost:
                        continue
                    _await_group(pid, time.monotonic())  # SIGKILL
                    why = "lost its quorum while stopping" if is_quorum_lost else "did not stop in time"
                    logger.warning("service=%s %s; killed", service.name, why)
                self._forget(service.name)
                self._group_path(service.name).unlink(missing_ok=True)
                waiting.remove(entry)
            time.sleep(0.1)
        return [service.name for service, _pid, _deadline in running]

    def status(self, service: ManagedService) -> ServiceStatus:
        """Report whether ``service`` is up, down or external."""
        if service.external_address:
            return ServiceStatus(service.name, "external", address=service.external_address)
        had_record = self._record_path(service.name).exists()
        endpoint = self.endpoint(service.name)
        if endpoint is None:
            return ServiceStatus(service.name, "stale" if had_record else "down")
        return ServiceStatus(service.name, "up", endpoint.address, endpoint.pid, endpoint.uptime_s)


def _terminate_group(pid: int, timeout_s: float) -> bool:
    """SIGTERM the process group led by ``pid``; SIGKILL it after ``timeout_s``.

    Returns:
        True if the group ended within the timeout.
    """
    _signal_group(pid, signal.SIGTERM)
    return _await_group(pid, time.monotonic() + timeout_s)


@functools.cache
def _default_signals() -> tuple[str, ...]:
    """The prefix that starts a service with SIGTERM and SIGINT at their defaults, whatever this process ignores.

    An ignored signal stays ignored across exec: a launcher that ignores SIGTERM (a background job of a
    script; a process in which Dagster mapped SIGTERM to an ignored SIGINT) would start services that
    `down` stops only by SIGKILL, after their stop timeout. GNU env (coreutils 8.31+) resets them and
    then execs the service (the same pid); where it cannot, the service starts as it is.
    """
    prefix = ("env", "--default-signal=TERM,INT")
    try:
        works = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        works = False
    return prefix if works else ()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


def _await_group(pid: int, deadline: float) -> bool:
    """Wait until the process group led by ``pid`` ended; SIGKILL it at ``deadline``; return True if it ended first."""
    while time.monotonic() < deadline:
        reap(pid)
        if not _group_alive(pid):
            return True
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    while _group_alive(pid):
        reap(pid)
        time.sleep(0.05)
    return False


def _group_alive(pgid: int) -> bool:
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.info["pid"]) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return False


def tail(path: Path, lines: int) -> str:
    """Return the last ``lines`` lines of a text file (empty if it does not exist)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
