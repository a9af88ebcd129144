"""Service health: each long-running process writes ``run/<name>.health.json`` itself.

Why a file written by the service rather than an HTTP probe: the dataflow, the execution
process and the loaders serve no HTTP, the state directory is already where ``tickwave
status`` looks, and a file written *periodically by the process* proves liveness (a hung
process stops writing, a dead thread is seen by the thread that writes) as well as
progress (each report carries the service's own figures: last epoch, lags, last insert,
last signal, journal position). Services that serve HTTP already (the warehouse, Dagster)
are probed over it instead.

A report is ``ok`` or ``degraded`` with the problems named; a report older than three
intervals means the process stopped reporting (``stalled``). A watched thread or child
that dies takes its process down (``HealthReporter.watch``): no zombie service.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.bus import Bootstrap
    from tickwave.config import Settings

logger = logging.getLogger(__name__)

STALE_AFTER_INTERVALS = 3.0


@dataclass(frozen=True)
class HealthReport:
    """One report a service writes about itself."""

    service: str
    pid: int
    written_at: float  # Unix time, s
    interval_s: float
    problems: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def is_healthy(self) -> bool:
        """Return True when the service named no problem."""
        return not self.problems

    def age_s(self, now: float | None = None) -> float:
        """Seconds since it was written."""
        return (time.time() if now is None else now) - self.written_at

    def is_stale(self, now: float | None = None) -> bool:
        """Return True when the service stopped reporting (hung, or gone)."""
        return self.age_s(now) > STALE_AFTER_INTERVALS * self.interval_s


def health_path(state_path: Path, name: str) -> Path:
    """The health file of service ``name``."""
    return state_path / "run" / f"{name}.health.json"


def write_health(state_path: Path, report: HealthReport) -> None:
    """Write ``report`` atomically (a reader never sees half a file)."""
    path = health_path(state_path, report.service)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(asdict(report), default=str))
    temporary.replace(path)


def read_health(state_path: Path, name: str) -> HealthReport | None:
    """Return the last report of ``name``, or None when there is none (or it is unreadable)."""
    try:
        return HealthReport(**json.loads(health_path(state_path, name).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None


Check = Callable[[], tuple[list[str], dict[str, Any]]]  # -> (problems, detail)


class HealthReporter:
    """A daemon thread that writes a service's health every ``interval_s`` and watches its workers.

    ``check`` returns the problems and the progress figures. A watched thread or child
    process that ends while the service runs calls ``on_death`` (which stops the service,
    so it exits non-zero and its supervisor restarts it) and is reported as a problem.
    """

    def __init__(
        self,
        state_path: Path,
        service: str,
        check: Check,
        interval_s: float = 2.0,
        on_death: Callable[[str], None] | None = None,
    ) -> None:
        """Report for ``service`` under ``state_path``; ``on_death(what)`` takes the process down."""
        self.state_path, self.service, self.check, self.interval_s = state_path, service, check, interval_s
        self.on_death = on_death
        self.watched: dict[str, Callable[[], bool]] = {}
        self.bus_address: str | None = None  # reported as ``bus_address`` once set (follow_broker)
        self.dead: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{service}-health", daemon=True)

    def watch(self, what: str, is_alive: Callable[[], bool]) -> None:
        """Take the process down (``on_death``) when ``is_alive()`` turns False."""
        self.watched[what] = is_alive

    def follow_broker(self, settings: Settings, bootstrap: Bootstrap) -> None:
        """Report the broker address this process uses; take the process down once the broker listens elsewhere.

        Its supervisor starts it again, at the broker's new address; ``tickwave status`` compares the
        reported address with the broker's (``bus_address``) and names a process left on a dead one.
        """
        from adapters.bus import broker_moved, connection

        self.bus_address = connection(bootstrap).bootstrap
        self.watch(
            f"its connection to the broker at {self.bus_address}", lambda: broker_moved(settings, bootstrap) is None
        )

    def start(self) -> HealthReporter:
        """Write a first report now, then every interval."""
        self._report_or_log()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reporting (the last report stays, and goes stale)."""
        self._stop.set()

    def report(self) -> HealthReport:
        """Check the workers and the service, write and return the report.

        A worker found dead is named in the report before ``on_death`` takes the process down:
        a process that stops at once must not leave its last healthy report behind.
        """
        newly_dead = [what for what, is_alive in self.watched.items() if what not in self.dead and not is_alive()]
        for what in newly_dead:
            self.dead.append(what)
            logger.error("service=%s %s died; taking the process down", self.service, what)
        try:
            problems, detail = self.check()
        except Exception as exc:  # a failing check is itself a health problem, never the reporter's end
            problems, detail = [f"health check failed: {exc}"], {}
        problems = [*(f"{what} died" for what in self.dead), *problems]
        if self.bus_address is not None:
            detail = {**detail, "bus_address": self.bus_address}
        report = HealthReport(self.service, os.getpid(), time.time(), self.interval_s, problems, detail)
        try:
            write_health(self.state_path, report)
        finally:  # written or not (a full disk), a dead worker takes the process down
            if self.on_death is not None and not self._stop.is_set():
                for what in newly_dead:
                    self.on_death(what)
        return report

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._report_or_log()

    def _report_or_log(self) -> None:
        try:
            self.report()
        except OSError as exc:  # a full disk must neither end the reporter nor stop the service starting
            logger.error("service=%s cannot write its health: %s", self.service, exc)


def group_lag(bootstrap: Bootstrap, group: str, topic: str) -> dict[str, int | None]:
    """Return each partition's lag (end offset - committed offset) of consumer ``group`` on ``topic``."""
    from confluent_kafka import TopicPartition

    from adapters.bus import make_consumer

    consumer = make_consumer(bootstrap, group)
    try:
        metadata = consumer.list_topics(topic, timeout=5).topics[topic]
        partitions = [TopicPartition(topic, partition) for partition in sorted(metadata.partitions)]
        committed = consumer.committed(partitions, timeout=5)
        lags: dict[str, int | None] = {}
        for position in committed:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, position.partition), timeout=5)
            start = position.offset if position.offset >= 0 else low
            lags[str(position.partition)] = max(0, high - start)
        return lags
    finally:
        consumer.close()
