"""The supervisor's Prometheus metrics: restarts per service and which services run, read at each scrape."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from adapters.endpoints import process_matches, record_path
from app.services.watchdog import Watchdog


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
