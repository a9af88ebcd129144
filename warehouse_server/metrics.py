"""The embedded warehouse's Prometheus metrics: requests by user and outcome, their duration, slots in use.

Recorded where each request is logged (``query.accesslog.log_request``) and read from the
per-user query slots (``security.limits.ConcurrencyLimit``) at each scrape. The user label takes
only the configured users' names (a request naming another user is ``unknown``), so a
client cannot grow the label set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric

from warehouse_server.security.limits import ConcurrencyLimit

REQUESTS: Final = Counter(
    "tickwave_warehouse_requests", "Requests answered, by user and outcome (ok, error)", ["user", "status"]
)
QUERY_SECONDS: Final = Histogram(
    "tickwave_warehouse_query_duration_seconds",
    "A request from its arrival to its last byte",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
_KNOWN_USERS: set[str] = set()


def know_users(names: Iterable[str]) -> None:
    """Name the users the ``user`` label may take (the server's configured users)."""
    _KNOWN_USERS.clear()
    _KNOWN_USERS.update(names)


def observe_request(user: str, is_error: bool, duration_s: float) -> None:
    """Count one answered request and its duration."""
    REQUESTS.labels(user if user in _KNOWN_USERS else "unknown", "error" if is_error else "ok").inc()
    QUERY_SECONDS.observe(duration_s)


class SlotsCollector:
    """``tickwave_warehouse_query_slots_in_use`` per read-only user, and the workers the server runs queries on."""

    def __init__(self, concurrency: ConcurrencyLimit, workers: int) -> None:
        """Read ``concurrency`` at each scrape; ``workers``: the query pool's size."""
        self.concurrency, self.workers = concurrency, workers

    def collect(self) -> Iterator[Metric]:
        """Yield the families."""
        in_use = GaugeMetricFamily(
            "tickwave_warehouse_query_slots_in_use", "Query slots a read-only user holds now", labels=["user"]
        )
        running = self.concurrency.in_use()
        for user in sorted(_KNOWN_USERS):
            in_use.add_metric([user], running.get(user, 0))
        yield in_use
        yield GaugeMetricFamily(
            "tickwave_warehouse_query_slots", "Query slots per read-only user", value=self.concurrency.limit
        )
        yield GaugeMetricFamily(
            "tickwave_warehouse_query_workers", "Threads the server runs queries on", value=self.workers
        )
