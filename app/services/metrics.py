"""The supervisor's Prometheus metrics: restarts per service, which services run, Dagster's run outcomes.

Dagster's runs are the warehouse's ``pipeline_runs`` (one row per run, replaced as its status
changes; written by the orchestration's run log): the supervisor counts them by job and status
at most every ``RUNS_EVERY_S``, so a scrape never waits on Dagster.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from adapters.endpoints import process_matches, record_path
from app.services.watchdog import Watchdog
from tickwave.config import Settings

logger = logging.getLogger(__name__)

RUNS_EVERY_S = 15.0
# At most 200 job x status pairs are exported (jobs come from the definitions, statuses from Dagster).
RUNS_SQL = (
    "SELECT job_name, status, count() FROM pipeline_runs FINAL GROUP BY job_name, status "
    "ORDER BY job_name, status LIMIT 200"
)


class SupervisorCollector:
    """``tickwave_supervisor_restarts_total``, ``_gave_up`` and ``tickwave_service_up`` per watched service."""

    def __init__(self, watchdog: Watchdog) -> None:
        """Read ``watchdog``'s counts (plain ints, written by its own thread) at each scrape."""
        self.watchdog = watchdog

    def collect(self) -> Iterator[Metric]:
        """Yield the families (one sample per watched service: a bounded label set)."""
        restarts = CounterMetricFamily(
            "tickwave_supervisor_restarts", "Restarts of a service by the supervisor", labels=["service"]
        )
        gave_up = GaugeMetricFamily(
            "tickwave_supervisor_gave_up",
            "1 while the supervisor stopped restarting a service (crash loop)",
            labels=["service"],
        )
        running = GaugeMetricFamily(
            "tickwave_service_up", "1 while the service's recorded process runs", labels=["service"]
        )
        state_path = self.watchdog.settings.state_path
        for name, watched in self.watchdog.watched.items():
            restarts.add_metric([name], watched.total_restarts)
            gave_up.add_metric([name], 1.0 if watched.gave_up else 0.0)
            running.add_metric([name], 1.0 if _is_running(record_path(state_path, name)) else 0.0)
        yield from (restarts, gave_up, running)


def _is_running(record: Path) -> bool:
    # Read-only: the watchdog itself removes a stale record, after noting its pid.
    try:
        endpoint = json.loads(record.read_text())
        return process_matches(int(endpoint["pid"]), float(endpoint["started_after_boot_s"]))
    except (OSError, ValueError, KeyError, TypeError):
        return False


class DagsterRunsCollector:
    """``tickwave_dagster_runs`` by job and status, from the warehouse's ``pipeline_runs`` (cached)."""

    def __init__(self, settings: Settings) -> None:
        """Ask the warehouse of ``settings``."""
        self.settings = settings
        self._lock = threading.Lock()
        self._counts: list[tuple[str, str, int]] = []
        self._read_at = -RUNS_EVERY_S

    def collect(self) -> Iterator[Metric]:
        """Yield the runs per job and status (the last counts read while the warehouse does not answer)."""
        runs = GaugeMetricFamily(
            "tickwave_dagster_runs",
            "Dagster runs recorded in pipeline_runs, by job and status",
            labels=["job", "status"],
        )
        for job, status, count in self._read():
            runs.add_metric([job, status], count)
        yield runs

    def _read(self) -> list[tuple[str, str, int]]:
        with self._lock:
            if time.monotonic() - self._read_at < RUNS_EVERY_S:
                return self._counts
            self._read_at = time.monotonic()
            from adapters.warehouse.client import connect

            try:
                client = connect(self.settings)
                try:
                    rows = client.query(RUNS_SQL).result_rows
                finally:
                    client.close()
            except Exception as exc:  # the warehouse restarting: the last counts stay until it answers
                logger.info("supervisor metrics: pipeline_runs not read (%s)", exc)
                return self._counts
            self._counts = [(str(job), str(status), int(count)) for job, status, count in rows]
            return self._counts
