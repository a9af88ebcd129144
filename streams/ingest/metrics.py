"""Ingest's Prometheus metrics: ticks sent and inputs rejected by reason code, read from its Kafka sink."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Final, Protocol

from prometheus_client.core import CounterMetricFamily, Metric

from tickwave.validation import CONTRACT, STEP_FAILED, tick_rules

# The reason codes of the validation (tickwave.validation): the label values a rejection may take.
REASON_CODES: Final = frozenset(
    {rule.code for rule in tick_rules(None, 0, 0)} | {CONTRACT, "spike", "late", STEP_FAILED}
)


def reason_code(reason: str) -> str:
    """Return the code of a dead letter's reason (``"late: 12 ms behind"`` -> ``late``), ``other`` if unknown."""
    code = reason.partition(":")[0]
    return code if code in REASON_CODES else "other"


class SinkCounts(Protocol):
    """What the collector reads of ingest's Kafka sink (:class:`~streams.ingest.adapters.kafka.KafkaSink`)."""

    ticks_sent: int
    delivery_failures: int
    rejected_by_reason: Counter[str]


class IngestCollector:
    """Ingest's counts: ticks sent and dead letters by reason code, read from its Kafka sink."""

    def __init__(self, sink: SinkCounts) -> None:
        """Read ``sink``'s counters at each scrape."""
        self.sink = sink

    def collect(self) -> Iterator[Metric]:
        """Yield the families."""
        yield CounterMetricFamily("tickwave_ingest_ticks_accepted", "Ticks sent to Kafka", value=self.sink.ticks_sent)
        rejected = CounterMetricFamily(
            "tickwave_ingest_ticks_rejected", "Inputs sent to the dead-letter topic, by reason code", labels=["reason"]
        )
        for code, count in sorted(dict(self.sink.rejected_by_reason).items()):
            rejected.add_metric([code], count)
        yield rejected
        yield CounterMetricFamily(
            "tickwave_ingest_delivery_failures", "Messages Kafka did not acknowledge", value=self.sink.delivery_failures
        )
