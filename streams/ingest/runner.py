"""Drive one source into Kafka: the ingest process's loop, counters and clean stop.

Every source yields :class:`~streams.ingest.batches.SourceBatch` es; the loop hands each to
the :class:`~streams.ingest.adapters.kafka.KafkaSink`, logs counters every
``ingest.stats_interval_s`` (ticks and ticks/s, dead letters, lag behind the source's
clock, messages in flight, delivery failures), and, when the source ends or ``stop`` is
set (SIGTERM, SIGINT), closes the source and flushes the producer so that everything
handed to Kafka is acknowledged before the process exits.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from streams.ingest.adapters.kafka import KafkaSink
from streams.ingest.batches import SourceBatch

logger = logging.getLogger(__name__)


class TickSource(Protocol):
    """What every source offers: batches, its clock, its progress, and a close."""

    name: str

    def batches(self) -> Iterator[SourceBatch]:
        """Yield batches until the source ends or its stop event is set."""

    def clock_ms(self) -> int | None:
        """Return the source's current time (UTC ms) for the lag counter, if it has one."""

    def progress(self) -> float | None:
        """Return the fraction done (0..1) for bounded sources, else None."""

    def close(self) -> None:
        """Release the source's resources."""


@dataclass
class IngestReport:
    """What a run did."""

    source: str
    ticks: int = 0
    dead_letters: int = 0
    delivery_failures: int = 0
    undelivered: int = 0
    elapsed_s: float = 0.0
    lag_ms: int | None = None
    is_stopped: bool = False

    @property
    def ticks_per_s(self) -> float:
        """Average ticks handed to Kafka per second."""
        return self.ticks / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def is_clean(self) -> bool:
        """True when every message was acknowledged by Kafka."""
        return self.undelivered == 0 and self.delivery_failures == 0


def run_ingest(
    source: TickSource,
    sink: KafkaSink,
    stop: threading.Event,
    *,
    stats_interval_s: float = 10.0,
    flush_timeout_s: float = 30.0,
    on_batch: Callable[[IngestReport], None] | None = None,
    monotonic: Callable[[], float] = time.monotonic,
) -> IngestReport:
    """Send everything ``source`` yields to ``sink`` until it ends or ``stop`` is set.

    Returns:
        The counters; ``undelivered`` > 0 means Kafka did not acknowledge everything
        within ``flush_timeout_s``.
    """
    report = IngestReport(source.name)
    started = monotonic()
    next_log = started + stats_interval_s
    logged_ticks, logged_at = 0, started

    def refresh() -> None:
        report.ticks, report.dead_letters = sink.ticks_sent, sink.dead_letters_sent
        report.delivery_failures, report.elapsed_s = sink.delivery_failures, monotonic() - started
        clock = source.clock_ms()
        report.lag_ms = None if clock is None or sink.newest_time_ms is None else clock - sink.newest_time_ms

    try:
        for batch in source.batches():
            sink.send(batch)
            refresh()
            if on_batch is not None:
                on_batch(report)
            now = monotonic()
            if now >= next_log:
                rate = (report.ticks - logged_ticks) / max(now - logged_at, 1e-9)
                _log_counters(report, rate, sink.in_flight)
                logged_ticks, logged_at, next_log = report.ticks, now, now + stats_interval_s
            if stop.is_set():
                break
    finally:
        report.is_stopped = stop.is_set()
        source.close()
        report.undelivered = sink.flush(flush_timeout_s)
        refresh()
    _log_counters(report, report.ticks_per_s, sink.in_flight, final=True)
    if report.undelivered:
        logger.error(
            "ingest source=%s: %d messages were not acknowledged within %.0f s",
            report.source,
            report.undelivered,
            flush_timeout_s,
        )
    return report


def _log_counters(report: IngestReport, rate: float, in_flight: int, final: bool = False) -> None:
    lag = "n/a" if report.lag_ms is None else f"{report.lag_ms}"
    logger.info(
        "ingest %ssource=%s ticks=%d ticks_per_s=%.0f dlq=%d lag_ms=%s in_flight=%d delivery_failures=%d",
        "finished " if final else "",
        report.source,
        report.ticks,
        rate,
        report.dead_letters,
        lag,
        in_flight,
        report.delivery_failures,
    )
