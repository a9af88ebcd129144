"""The supervisor process ``tickwave up`` starts last: restarts crashed services, stops a crash loop.

Design: one small process (``tickwave supervise``, service ``supervisor``) with its own
run record, started after every other service and stopped first by ``tickwave down``. It
looks at each service's endpoint record every ``supervision.check_interval_s``. A service
that should run (``run/<name>.wanted``: started, not stopped by ``down``) and whose process
is gone (``kill -9``, a crash, a dead worker that took it down) is restarted whatever the
moment it died (before this watcher first saw it, or after ``tickwave status`` or a client
removed its stale record) through the same :class:`~app.services.supervisor.Supervisor` ``up`` uses
(readiness wait and after-start step included: topics, migrations; the crashed members of a
quorum, Kafka's nodes, together), after an exponential
backoff (``backoff_initial_s`` doubling up to ``backoff_max_s``). A service whose process
runs but stopped writing its health report for ``stall_restart_s`` (hung), or reported
problems for ``degraded_restart_s`` (off by default), is stopped (SIGTERM, SIGKILL after
``stop_grace_s``) and restarted the same way. ``max_restarts``
restarts of one service within ``window_s`` is a crash loop: its restarts stop, the
reason is logged and left in ``run/<name>.gave_up.json`` for ``tickwave status``, until
the next ``tickwave up``. Every crash, stall, restart and give-up is a row of the warehouse
table ``service_events`` (kept in memory while the warehouse itself is down), and so, every
minute, is the free space of each volume holding the data (``disk_free``, for the ops board).

Why a watcher of records rather than the parent of every service: ``up`` already starts
each service in its own session with a record, so a supervisor started (or restarted)
later takes over running services without restarting them. Under systemd the same job
falls to ``Restart=on-failure`` and ``StartLimitBurst``/``StartLimitIntervalSec``
(docs/operations.md: "Running under systemd").
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.disk import DISK_FREE_EVENT, MEMORY_EVENT, volumes
from adapters.health import HealthReporter, read_health
from app.services.logroll import roll_logs
from app.services.resources import data_paths, memory_bytes
from app.services.supervisor import ManagedService, Supervisor
from tickwave.config import Settings, SupervisionSettings
from tickwave.errors import TickwaveError

logger = logging.getLogger(__name__)

SUPERVISOR_NAME = "supervisor"
MAX_PENDING_EVENTS = 10_000
SAMPLE_INTERVAL_S = 60.0


def gave_up_path(state_path: Path, name: str) -> Path:
    """The file saying why the supervisor stopped restarting ``name``."""
    return state_path / "run" / f"{name}.gave_up.json"


def read_gave_up(state_path: Path, name: str) -> str | None:
    """Return why restarts of ``name`` stopped, or None."""
    try:
        return str(json.loads(gave_up_path(state_path, name).read_text())["reason"])
    except (FileNotFoundError, ValueError, KeyError):
        return None


@dataclass
class RestartPolicy:
    """Exponential backoff and the crash-loop rule (pure: time comes in as arguments)."""

    settings: SupervisionSettings
    restarts: deque[float] = field(default_factory=deque)  # monotonic times of recent restarts

    def delay_s(self) -> float:
        """The pause before the next restart: initial x 2^(restarts in the window), capped."""
        return float(min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2 ** len(self.restarts)))

    def forget_before(self, now: float) -> None:
        """Drop restarts older than the window."""
        while self.restarts and now - self.restarts[0] > self.settings.window_s:
            self.restarts.popleft()

    def is_crash_loop(self, now: float) -> bool:
        """Return True when ``max_restarts`` restarts happened within the window."""
        self.forget_before(now)
        return len(self.restarts) >= self.settings.max_restarts

    def restarted(self, now: float) -> None:
        """Count a restart."""
        self.restarts.append(now)


@dataclass
class _Watched:
    service: ManagedService
    policy: RestartPolicy
    pid: int | None = None
    exit_code: int | None = None  # of the last exit, when the process was our child
    restart_at: float | None = None  # monotonic time of the scheduled restart
    total_restarts: int = 0
    gave_up: str | None = None
    degraded_since: float | None = None  # monotonic time its health first named a problem


class EventLog:
    """Rows for ``service_events``, inserted when the warehouse answers (kept in memory until then)."""

    def __init__(self, settings: Settings) -> None:
        """Insert with the settings' warehouse client."""
        self.settings = settings
        self.pending: list[dict[str, Any]] = []
        self.host = socket.gethostname()
        # Each event at least 1 ms after the one before: events written together (a crash, then its
        # crash-loop verdict) keep their order for a reader sorting by time.
        self._last_ms = 0

    def add(
        self,
        service: str,
        event: str,
        pid: int | None,
        restarts: int,
        detail: str,
        exit_code: int | None = None,
        level: int = logging.WARNING,
    ) -> None:
        """Queue one event (and log it at ``level``)."""
        logger.log(level, "service=%s %s pid=%s restarts=%d %s", service, event, pid, restarts, detail)
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        self.pending.append(
            {
                "event_id": uuid.uuid4().hex,
                "event_at_ms": self._last_ms,
                "service": service,
                "event": event,
                "pid": pid or 0,
                "exit_code": exit_code,
                "restarts": restarts,
                "detail": detail,
                "host": self.host,
            }
        )
        del self.pending[:-MAX_PENDING_EVENTS]

    def flush(self) -> None:
        """Insert the pending events; keep them if the warehouse does not answer."""
        if not self.pending:
            return
        from adapters.warehouse.client import connect
        from tickwave.warehouse.tables import SERVICE_EVENTS, to_arrow

        rows = self.pending
        columns = {name: [row[name] for row in rows] for name in SERVICE_EVENTS.column_names}
        try:
            client = connect(self.settings)
            try:
                client.insert_arrow(SERVICE_EVENTS.name, to_arrow(SERVICE_EVENTS, columns))
            finally:
                client.close()
        except Exception as exc:  # the warehouse may be the service that crashed: retry at the next round
            logger.info("service_events: %d events wait for the warehouse (%s)", len(rows), exc)
            return
        del self.pending[: len(rows)]


class Watchdog:
    """Restarts the crashed services of one state directory."""

    def __init__(self, settings: Settings, services: list[ManagedService]) -> None:
        """Watch ``services`` (the embedded ones that are not external)."""
        self.settings = settings
        self.supervisor = Supervisor(settings)
        self.events = EventLog(settings)
        self.watched = {
            service.name: _Watched(service, RestartPolicy(settings.supervision))
            for service in services
            if not service.external_address and service.name != SUPERVISOR_NAME
        }
        self.disk_paths = data_paths(settings, services)
        self.next_sample_at = 0.0  # monotonic; the first round samples

    def step(self, now: float) -> None:
        """Look at every service once: note crashes, restart those whose backoff ended."""
        for name, watched in self.watched.items():
            if watched.gave_up is not None:
                if gave_up_path(self.settings.state_path, name).exists():
                    continue
                watched.gave_up = None  # `tickwave up` removed the file: it started the service again
                watched.policy.restarts.clear()
            if watched.restart_at is None:
                watched.exit_code = _exit_code(watched.pid)  # before endpoint(), which reaps our exited children
                recorded_pid = self.supervisor.recorded_pid(name)  # before endpoint() removes a stale record
                endpoint = self.supervisor.endpoint(name)
                if endpoint is not None:
                    watched.pid = endpoint.pid
                    unwell = self._unwell(watched, endpoint.pid, now)
                    if unwell is None:
                        continue
                    event, reason = unwell
                    logger.error("service=%s %s; stopping it for a restart", name, reason)
                    self.supervisor.stop(
                        watched.service, timeout_s=self.settings.supervision.stop_grace_s, is_restart=True
                    )
                    self._crashed(watched, now, event, reason)
                elif not self.supervisor.is_wanted(name) or self.supervisor.is_starting(name):
                    continue  # stopped by `down` (or never started), or a start in progress: not ours to start
                else:  # gone, whether or not this watcher ever saw it running
                    watched.pid = recorded_pid or watched.pid
                    self._crashed(watched, now)
            if watched.restart_at is not None and now >= watched.restart_at:
                self._restart(watched, now)
        self.events.flush()

    def _unwell(self, watched: _Watched, pid: int, now: float) -> tuple[str, str] | None:
        """Return (event, reason) when the running ``pid`` is hung or degraded too long, else None.

        Only services that write a health report (the dataflow, its loader, execution, the
        audit loader) are judged; a report of another pid (a start in progress) is not theirs.
        """
        settings = self.settings.supervision
        report = read_health(self.settings.state_path, watched.service.name)
        if report is None or report.pid != pid:
            watched.degraded_since = None
            return None
        age = report.age_s()
        if settings.stall_restart_s > 0 and report.is_stale() and age > settings.stall_restart_s:
            return "stalled", f"no health report for {age:.0f} s (hung)"
        if report.is_healthy or report.is_stale():
            watched.degraded_since = None
            return None
        watched.degraded_since = now if watched.degraded_since is None else watched.degraded_since
        degraded_s = now - watched.degraded_since
        if settings.degraded_restart_s > 0 and degraded_s > settings.degraded_restart_s:
            return "degraded", f"degraded for {degraded_s:.0f} s: {'; '.join(report.problems)[:1500]}"
        return None

    def _crashed(self, watched: _Watched, now: float, event: str = "crashed", detail: str = "process gone") -> None:
        name = watched.service.name
        exit_code = watched.exit_code
        watched.degraded_since = None
        self.events.add(name, event, watched.pid, watched.total_restarts, detail, exit_code)
        if watched.policy.is_crash_loop(now):
            settings = self.settings.supervision
            reason = (
                f"crash loop: {settings.max_restarts} restarts within {settings.window_s:.0f} s; "
                f"not restarting (see `tickwave logs {name}`; `tickwave up` starts it again)"
            )
            watched.gave_up = reason
            path = gave_up_path(self.settings.state_path, name)
            path.write_text(json.dumps({"reason": reason, "at": time.time()}))
            self.events.add(name, "gave_up", watched.pid, watched.total_restarts, reason)
            logger.error("service=%s %s", name, reason)
            return
        delay = watched.policy.delay_s()
        watched.restart_at = now + delay
        logger.warning(
            "service=%s crashed (pid %s, exit %s); restarting in %.1f s", name, watched.pid, exit_code, delay
        )

    def _restart(self, watched: _Watched, now: float) -> None:
        # The crashed members of its quorum come back with it: alone, none would be ready before a majority runs.
        quorum = watched.service.quorum
        group = [watched] + [
            other
            for other in self.watched.values()
            if other is not watched
            and quorum is not None
            and other.service.quorum == quorum
            and other.restart_at is not None
            and other.gave_up is None
        ]
        for member in group:
            member.restart_at = None
            member.policy.restarted(now)
            member.total_restarts += 1
        try:
            endpoints = self.supervisor.start_together([member.service for member in group])
            for member in group:
                member.service.after_start()
        except TickwaveError as exc:  # it did not come up: counts as another crash
            for member in group:
                self.events.add(
                    member.service.name, "restart_failed", member.pid, member.total_restarts, str(exc)[:2000]
                )
                self._crashed(member, time.monotonic())
            return
        for member, endpoint in zip(group, endpoints, strict=True):
            member.pid = endpoint.pid if not isinstance(endpoint, str) else None
            self.events.add(member.service.name, "restarted", member.pid, member.total_restarts, "")

    def sample_resources(self, now: float) -> None:
        """Every ``SAMPLE_INTERVAL_S``, roll the logs grown too big, record free space and each service's memory.

        Rows of ``service_events`` for the ops board: ``disk_free`` per volume, ``memory`` per
        watched service (its process tree's proportional set size, MB).
        """
        if now < self.next_sample_at:
            return
        self.next_sample_at = now + SAMPLE_INTERVAL_S
        roll_logs(self.supervisor.logs_dir, self.settings.retention.service_log_mb << 20)
        for volume in volumes(self.disk_paths):
            detail = {
                "volume": volume.mount,
                "holds": list(volume.holds),
                "free_bytes": volume.free_bytes,
                "total_bytes": volume.total_bytes,
                "free_pct": round(volume.free_pct, 2),
            }
            self.events.add(SUPERVISOR_NAME, DISK_FREE_EVENT, os.getpid(), 0, json.dumps(detail), level=logging.DEBUG)
        for name, watched in self.watched.items():
            held = memory_bytes(watched.pid) if watched.pid else None
            if held is not None:
                sampled = json.dumps({"memory_mb": round(held / 1e6, 1)})
                self.events.add(name, MEMORY_EVENT, watched.pid, watched.total_restarts, sampled, level=logging.DEBUG)

    def health(self) -> tuple[list[str], dict[str, Any]]:
        """The supervisor's own report: restarts per service and the services it gave up on."""
        problems = [f"{name}: {watched.gave_up}" for name, watched in self.watched.items() if watched.gave_up]
        detail = {
            "restarts": {name: watched.total_restarts for name, watched in self.watched.items()},
            "gave_up": sorted(name for name, watched in self.watched.items() if watched.gave_up),
            "pending_events": len(self.events.pending),
        }
        return problems, detail

    def run(self, stop: threading.Event) -> None:
        """Watch until ``stop`` is set."""
        reporter = HealthReporter(self.settings.state_path, SUPERVISOR_NAME, self.health, interval_s=2.0).start()
        try:
            while not stop.wait(self.settings.supervision.check_interval_s):
                try:
                    self.step(time.monotonic())
                    self.sample_resources(time.monotonic())
                except Exception:  # the loop's outer edge: log and look again next round, never stop supervising
                    logger.exception("supervisor: a round failed")
        finally:
            reporter.stop()
            self.events.flush()


def _exit_code(pid: int | None) -> int | None:
    """The exit status of our own child ``pid`` (a service this supervisor restarted), else None."""
    if pid is None:
        return None
    try:
        waited, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return None  # started by `up`, not by us (or already reaped)
    if waited == 0:
        return None
    return os.waitstatus_to_exitcode(status)
