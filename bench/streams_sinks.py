"""Counting sinks for the streams benchmarks: the flow's outputs are counted, not stored.

Shared by ``bench.streams`` (throughput) and ``bench.streams_latency`` (the signals-only
latency run); neither imports the other's module for them.
"""

from __future__ import annotations

from typing import Any

from bytewax.outputs import DynamicSink, StatelessSinkPartition

from streams.flow import FlowSinks


class CountingSink(DynamicSink[Any]):
    """Discards items, counting them (outputs are not what is measured)."""

    def __init__(self, counts: dict[str, int], name: str) -> None:
        self.counts, self.name = counts, name

    def build(self, step_id: str, worker_index: int, worker_count: int) -> StatelessSinkPartition[Any]:
        counts, name = self.counts, self.name

        class Partition(StatelessSinkPartition[Any]):
            def write_batch(self, items: list[Any]) -> None:
                counts[name] = counts.get(name, 0) + len(items)

        return Partition()


def counting_sinks(counts: dict[str, int], *, but: frozenset[str] = frozenset()) -> dict[str, CountingSink]:
    """Return a counting sink for every output of the flow (``FlowSinks``' fields) except those in ``but``."""
    return {name: CountingSink(counts, name) for name in FlowSinks.__dataclass_fields__ if name not in but}
