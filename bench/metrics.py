"""What the Prometheus metrics cost the hot paths: the same work with and without them, in the same run.

1. The execution decision path in process (paper broker, journal fsync off: the decision
   alone, where an added microsecond shows most): blocks of signals alternate between a
   service whose publisher counts every event (``execution.metrics.AuditCounts``, as
   ``KafkaPublisher`` does) and whose decisions are timed into the decision histogram (as
   the hot loop does), and an identical service without either.
2. The dataflow's records publisher: counting what passes (``streams.metrics.MeteredPublisher``)
   per message, against passing the same messages through; and the signals publisher's
   latency observation per signal.
3. One histogram observation and one counter increment of prometheus-client.

Run: python -m bench.metrics [--signals 20000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console

from adapters.gcpause import start_gc_freezer
from bench.execution import MIXED_MIDS, WIDE_LIMITS, HaltWatcher, _mixed_tick, _signal
from bench.summary import record
from execution.app import build_service
from execution.metrics import DECISION_SECONDS, AuditCounts
from streams.metrics import INFERENCE_SECONDS, MeteredPublisher
from tickwave.audit_chain import ChainLink
from tickwave.config import load_settings
from tickwave.contracts import Message, OrderDenied, Tick

console = Console()
BLOCK = 200


class CountingWatcher(HaltWatcher):
    """The benchmark's drop-all publisher, counting each event as the production publisher does."""

    def __init__(self) -> None:
        super().__init__()
        self.counts = AuditCounts()

    def publish(self, message: Message, key: str, position: int, link: ChainLink | None = None) -> None:
        if position >= self.counts.counting_from:  # as KafkaPublisher.publish counts
            kind = type(message)
            self.counts.by_kind[kind] += 1
            if kind is OrderDenied:
                self.counts.denied_by_check[message.check] += 1  # type: ignore[attr-defined]
        super().publish(message, key, position, link)


def _service(root: Path, name: str, publisher: Any) -> Any:
    symbols = list(MIXED_MIDS)
    settings = load_settings(
        state_dir=root / name,
        market={"hours": "always"},
        execution={"risk": {**WIDE_LIMITS, "allowed_symbols": symbols}, "journal_fsync": False},
    )
    service = build_service(settings, publisher)
    service.start()
    now_ms = time.time_ns() // 1_000_000
    for symbol in symbols:
        service.handle_tick(_mixed_tick(now_ms, symbol))
    return service


def decision_path(root: Path, count: int) -> dict[str, list[float]]:
    """Decide ``count`` signals on each service, alternating blocks; return each one's latencies (us)."""
    services = {
        "without": _service(root, "without", HaltWatcher()),
        "with": _service(root, "with", CountingWatcher()),
        "control": _service(root, "control", HaltWatcher()),  # a second "without": the noise between two equals
    }
    symbols = list(MIXED_MIDS)
    samples: dict[str, list[float]] = {name: [] for name in services}
    stop = threading.Event()
    start_gc_freezer(stop)
    now_ms = time.time_ns() // 1_000_000
    names = list(services)
    for block in range(0, count, BLOCK):
        turn = block // BLOCK % len(names)  # each service goes first in turn: no order effect
        for name in names[turn:] + names[:turn]:
            service = services[name]
            timed = name == "with"
            for index in range(block, min(count, block + BLOCK)):
                signal = _signal(index // len(symbols), now_ms, symbols[index % len(symbols)])
                started = time.perf_counter()
                service.handle_signals([signal])
                if timed:
                    DECISION_SECONDS.observe(time.perf_counter() - started)
                samples[name].append((time.perf_counter() - started) * 1e6)
    stop.set()
    for service in services.values():
        service.close()
    return {name: values[count // 10 :] for name, values in samples.items()}  # the first tenth warms up


def _per_item_ns(run: Any, items: int, repeats: int = 7) -> float:
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter_ns()
        run()
        best = min(best, (time.perf_counter_ns() - started) / items)
    return best


def records_publisher(count: int = 100_000) -> tuple[float, float]:
    """Return ns per tick passed through with counting, and without (the same generator shape)."""
    ticks = [
        Tick(symbol="EURUSD", time_ms=1_700_000_000_000 + index, seq=0, bid=1.1, ask=1.1001) for index in range(count)
    ]
    metered = MeteredPublisher("127.0.0.1:1", "unused")

    def plain(messages: list[Tick]) -> Any:
        yield from messages

    with_counting = _per_item_ns(lambda: sum(1 for _ in metered._counted(ticks)), count)
    without = _per_item_ns(lambda: sum(1 for _ in plain(ticks)), count)
    return with_counting, without


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--signals", type=int, default=20_000, help="signals decided by each service")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tw-bench-metrics-") as directory:
        samples = decision_path(Path(directory), arguments.signals)
    p50 = {name: statistics.median(values) for name, values in samples.items()}
    p99 = {name: sorted(values)[int(len(values) * 0.99)] for name, values in samples.items()}
    mean = {name: statistics.fmean(values) for name, values in samples.items()}
    ratio = p50["with"] / p50["without"]
    noise = p50["control"] / p50["without"]
    console.print(
        f"decision path (paper broker, fsync off), {len(samples['with']):,} signals each, same run: "
        f"p50 {p50['with']:.1f} us with metrics vs {p50['without']:.1f} us without ({ratio:.3f}x; a second "
        f"service without: {p50['control']:.1f} us, {noise:.3f}x); p99 {p99['with']:.1f} vs {p99['without']:.1f} "
        f"(second: {p99['control']:.1f}) us; mean {mean['with']:.1f} vs {mean['without']:.1f} us"
    )
    record(
        "decision path with metrics / without, p50 (fsync off)",
        ratio,
        "x",
        f"without: p50 {p50['without']:.1f} us, p99 {p99['without']:.1f} us; with: p99 {p99['with']:.1f} us; "
        f"two services without: {noise:.3f}x",
        "< 1.05x",
        ratio < 1.05,
    )
    counted, passed = records_publisher()
    console.print(f"records publisher: {counted:.0f} ns per message counted vs {passed:.0f} ns passed through")
    record("dataflow records counted", counted - passed, "ns/message", f"passed through: {passed:.0f} ns/message")

    def observe_all() -> None:
        for _ in range(100_000):
            INFERENCE_SECONDS.observe(0.0001)

    marker = Tick(symbol="EURUSD", time_ms=1, seq=0, bid=1.0, ask=1.1)

    def publish_all(watcher: CountingWatcher | HaltWatcher) -> None:
        for _ in range(100_000):
            watcher.publish(marker, "", 1)

    observe = _per_item_ns(observe_all, 100_000)
    counted_event = _per_item_ns(partial(publish_all, CountingWatcher()), 100_000)
    plain_event = _per_item_ns(partial(publish_all, HaltWatcher()), 100_000)
    console.print(
        f"one histogram observation: {observe:.0f} ns; one audit event published with its count: "
        f"{counted_event:.0f} ns, without: {plain_event:.0f} ns"
    )
    record("histogram observation (prometheus-client)", observe, "ns")


if __name__ == "__main__":
    main()
