"""The execution process's Prometheus metrics, recorded from its shell, never inside the compiled core.

Counts come from what the process publishes to the audit bus (every journaled event, once,
``AuditCounts`` in :class:`~execution.connectors.KafkaPublisher`) and are read, with the
trading state and positions, when Prometheus scrapes (``ExecutionCollector``): nothing is
added to a decision but a dictionary increment per event. The decision (a batch of signals:
the gate, the journal's fsync, the broker call) and the journal's fsyncs are timed around the
core's calls, as histograms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Final

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from adapters.metrics import HotHistogram, counts_by_kind, labelled
from tickwave.contracts import OrderFilled, OrderRejected, OrderSubmitted, Signal

# A decision takes ~0.1 ms without an fsync and a few ms with one; the tail matters up to a second.
DECISION_SECONDS: Final = HotHistogram(
    "tickwave_execution_decision_seconds",
    "A batch of signals decided: risk gate, journal write and fsync, broker call",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
JOURNAL_FSYNC_SECONDS: Final = HotHistogram(
    "tickwave_execution_journal_fsync_seconds",
    "One fsync of the execution journal",
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
AUDIT_BATCH_SECONDS: Final = Histogram(
    "tickwave_audit_batch_seconds",
    "The audit loader's batch: decoded, routed and flushed into the warehouse",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
TRADING_STATES: Final = ("ACTIVE", "REDUCING", "HALTED")


class AuditCounts:
    """Events of this process's life by kind, counted as they are published (a replayed tail is not counted).

    ``KafkaPublisher.publish`` counts inline (a method call per event cost the decision path more).
    """

    def __init__(self) -> None:
        self.by_kind: Counter[type] = Counter()
        self.denied_by_check: Counter[str] = Counter()
        self.counting_from = 0  # the first journal position decided by this process


class ExecutionCollector:
    """The process's counts, trading state and positions, read at each scrape."""

    def __init__(
        self,
        counts: AuditCounts,
        trading_state: Callable[[], str],
        positions: Callable[[], Mapping[str, Decimal]],
        ticks_skipped: Callable[[], int],
    ) -> None:
        """Read ``counts`` and the engine's view through the callables (dictionaries copied in one step)."""
        self.counts, self.trading_state, self.positions, self.ticks_skipped = (
            counts,
            trading_state,
            positions,
            ticks_skipped,
        )

    def collect(self) -> Iterator[Metric]:
        """Yield the families; labels are the configured symbols, the risk checks and the three trading states."""
        yield from counts_by_kind(
            "tickwave_execution",
            dict(self.counts.by_kind),
            (
                ("signals", Signal, "Signals decided (not counting ones seen before)"),
                ("orders_submitted", OrderSubmitted, "Orders submitted (journaled before the broker call)"),
                ("orders_rejected", OrderRejected, "Orders the broker rejected"),
                ("fills", OrderFilled, "Executions the broker reported"),
            ),
        )
        yield labelled(
            CounterMetricFamily,
            "tickwave_execution_orders_denied",
            "Orders the risk gate denied, by check",
            "check",
            dict(self.counts.denied_by_check),
        )
        yield CounterMetricFamily(
            "tickwave_execution_ticks_skipped",
            "Ticks not used for prices (the dataflow's checks)",
            value=self.ticks_skipped(),
        )
        state = GaugeMetricFamily(
            "tickwave_execution_trading_state", "1 for the current trading state", labels=["state"]
        )
        current = self.trading_state()
        for name in TRADING_STATES:
            state.add_metric([name], 1.0 if current == name else 0.0)
        yield state
        yield labelled(
            GaugeMetricFamily,
            "tickwave_execution_position_lots",
            "Net position per symbol (lots; sold negative)",
            "symbol",
            {symbol: float(lots) for symbol, lots in dict(self.positions()).items()},
        )
