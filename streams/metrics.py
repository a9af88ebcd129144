"""The dataflow's and the streams loader's Prometheus metrics.

The flow's counts are taken where its rows leave it (``MeteredPublisher``: the one publisher
of ``streams.records``, which carries every accepted tick, bar, prediction, signal and
quarantined input) and its signals where they are sent (``SignalLatencyPublisher``); the
read progress and lag of each ticks partition are the figures the health report already
keeps (``PARTITION_PROGRESS``), read at each scrape. Labels are bounded: partitions of the
ticks topic, reason codes of the validation rules (anything else is ``other``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Final

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from adapters.metrics import HotHistogram, WritersCollector, counts_by_kind, labelled
from streams.connectors import PARTITION_PROGRESS, Publisher
from streams.ingest.metrics import reason_code
from tickwave.contracts import Bar, DeadLetter, Message, Prediction, Signal, Tick
from tickwave.timeframes import TIMEFRAMES_MS

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

TICK_TO_SIGNAL_SECONDS: Final = HotHistogram(
    "tickwave_dataflow_tick_to_signal_seconds",
    "A signal sent, from the earliest moment its bar could close (bar end + the late wait)",
    buckets=_LATENCY_BUCKETS,
)
INFERENCE_SECONDS: Final = HotHistogram(
    "tickwave_dataflow_inference_seconds",
    "The model call that scored a prediction (ONNX Runtime, the bars of one batch together)",
    buckets=(0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
)
LOADER_BATCH_SECONDS: Final = Histogram(
    "tickwave_loader_batch_seconds",
    "The streams loader's flush: every writer's rows inserted, then the offsets committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)


class MeteredPublisher(Publisher):
    """The ``streams.records`` publisher, counting what the flow stores by kind as it passes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Take ``Publisher``'s arguments."""
        super().__init__(*args, **kwargs)
        self.by_kind: Counter[type] = Counter()
        self.rejected: Counter[str] = Counter()

    def publish(self, messages: Iterable[Message]) -> None:
        """Count, then publish (one pass: the messages come as a generator)."""
        super().publish(self._counted(messages))

    def _counted(self, messages: Iterable[Message]) -> Iterator[Message]:
        by_kind = self.by_kind
        for message in messages:
            kind = type(message)
            by_kind[kind] += 1
            if kind is Prediction:
                INFERENCE_SECONDS.observe(message.inference_latency_us / 1e6)  # type: ignore[attr-defined]
            elif kind is DeadLetter:
                self.rejected[reason_code(message.reason)] += 1  # type: ignore[attr-defined]
            yield message


class SignalLatencyPublisher(Publisher):
    """The signals publisher, timing each signal from the earliest moment its bar could close."""

    def __init__(self, *args: Any, late_wait_ms: int, **kwargs: Any) -> None:
        """Take ``Publisher``'s arguments and the flow's late wait (``streams.late_wait_ms``)."""
        super().__init__(*args, **kwargs)
        self.late_wait_ms = late_wait_ms

    def publish(self, messages: Iterable[Message]) -> None:
        """Publish, then observe each signal's latency (wall clock, ms resolution)."""
        signals = list(messages)
        super().publish(signals)
        for signal in signals:
            if type(signal) is Signal:
                closes_ms = signal.bar_start_ms + TIMEFRAMES_MS.get(signal.timeframe, 0) + self.late_wait_ms
                TICK_TO_SIGNAL_SECONDS.observe(max(0, signal.created_at_ms - closes_ms) / 1000)


class DataflowCollector:
    """The flow's counts by kind and each ticks partition's progress, read at each scrape."""

    def __init__(self, records: MeteredPublisher) -> None:
        """Read the counts of ``records`` (the ``streams.records`` publisher)."""
        self.records = records

    def collect(self) -> Iterator[Metric]:
        """Yield the families."""
        yield from counts_by_kind(
            "tickwave_dataflow",
            dict(self.records.by_kind),
            (
                ("ticks_accepted", Tick, "Ticks accepted into bars"),
                ("bars", Bar, "Bars closed"),
                ("predictions", Prediction, "Predictions scored (champions and challengers)"),
                ("signals", Signal, "Signals emitted"),
            ),
        )
        yield labelled(
            CounterMetricFamily,
            "tickwave_dataflow_ticks_rejected",
            "Inputs quarantined, by reason code",
            "reason",
            dict(self.records.rejected),
        )
        read = CounterMetricFamily("tickwave_dataflow_ticks_read", "Ticks read, by partition", labels=["partition"])
        lag = GaugeMetricFamily(
            "tickwave_dataflow_lag_messages",
            "Ticks behind the partition's end at the last report",
            labels=["partition"],
        )
        for partition, progress in sorted(dict(PARTITION_PROGRESS).items()):
            read.add_metric([str(partition)], float(progress.get("read") or 0))
            if progress.get("lag") is not None:
                lag.add_metric([str(partition)], float(progress["lag"] or 0))
        yield read
        yield lag


class LoaderCollector:
    """The streams loader's rows by table, retries and failures (its writers), and the records it skipped."""

    def __init__(self, loader: Any) -> None:
        """Read ``loader`` (a :class:`~streams.loader.RecordLoader`) at each scrape."""
        self.loader = loader
        self.writers = WritersCollector("tickwave_loader", lambda: loader.pool.writers)

    def collect(self) -> Iterator[Metric]:
        """Yield the families."""
        yield from self.writers.collect()
        yield CounterMetricFamily(
            "tickwave_loader_records_skipped", "Records that could not be decoded", value=self.loader.skipped
        )
