"""What ``bench.soak`` plans and samples each minute: the services' processes, the disks, the parts, the latency.

Each figure is read the way an operator would read it: psutil over the pids the supervisor
recorded (with their descendants), the broker's and the warehouse's data directories as
``du`` counts them, ``system.parts`` and the engine's ``system.metrics`` over HTTP, the
consumer groups' lags, and one consumer reading the ticks and signals topics for
tick-to-signal latency.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import psutil

from adapters.process_memory import allocated_bytes, resident_bytes
from tickwave.config import Settings

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger(__name__)

# What the warehouse engine says it holds: its tracked total and each cache that holds anything.
ENGINE_MEMORY_SQL = (
    "SELECT metric, value FROM system.metrics "
    "WHERE metric = 'MemoryTracking' OR (endsWith(metric, 'CacheBytes') AND value > 0)"
)


@dataclass(frozen=True)
class SoakPlan:
    """How long, how fast, how often."""

    minutes: float = 140.0
    warmup_minutes: float = 60.0  # the warehouse's floors rose until about minute 60
    rate: float = 500.0  # simulated ticks per second, all symbols together
    symbols: int = 10
    sample_s: float = 60.0
    window_minutes: float = 10.0  # latency: the first and the last window after the warm-up
    # Execution keeps an ended order in memory while a periodic reconciliation may be shown it: its
    # window (24 h by default) and a 10-minute margin. Shortened, an hour shows the level it keeps.
    reconciliation_window_minutes: float = 10.0
    is_smoke: bool = False  # a few minutes: print the targets, do not fail on them


@dataclass
class Usage:
    """One service's process tree at one moment."""

    pid: int
    memory_bytes: int  # PSS, as `tickwave status` shows it
    cpu_s: float
    fds: int
    threads: int
    processes: int = 0
    allocated_bytes: int = 0  # PSS without file-backed pages: what the processes allocated (the judged figure)


@dataclass
class Sample:
    """Everything recorded at one moment of the run."""

    at_s: float  # since the live market started
    ticks: int  # on the ticks topic (end offsets)
    # name -> memory_mb (PSS), allocated_mb (PSS without file-backed pages), cpu_pct (from the second sample on),
    # fds, threads, pid
    services: dict[str, dict[str, float]] = field(default_factory=dict)
    kafka_bytes: int = 0
    warehouse_bytes: int = 0  # its data directory as du counts it: merged-away parts wait there 8 minutes
    warehouse_active_bytes: int = 0  # its active parts (system.parts): what it keeps of the data
    parts: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float | int] = field(default_factory=dict)  # count, p50, p99, max over the interval
    lags: dict[str, int | None] = field(default_factory=dict)
    # Dagster's runs (processes under its code server, which come and go): processes, memory_mb.
    runs: dict[str, float] = field(default_factory=dict)
    # The warehouse engine's own accounting (system.metrics), bytes: MemoryTracking (all it holds) and each
    # cache that holds any, to tell caches filling up to their caps from a leak.
    engine: dict[str, int] = field(default_factory=dict)


def tree_usage(pid: int, others: frozenset[int] = frozenset(), max_depth: int | None = None) -> Usage | None:
    """Memory, CPU time, descriptors and threads of ``pid`` and its descendants (None if it is gone).

    ``others``: the pids of the other services, left out with their descendants: a service
    the supervisor restarted is the supervisor's child, and is counted as itself, not twice.
    ``max_depth``: descendants that deep at most (1: the children alone; None: all).
    """
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return None
    processes, pending = [], [(root, 0)]
    while pending:
        process, depth = pending.pop()
        processes.append(process)
        if max_depth is not None and depth >= max_depth:
            continue
        try:
            pending += [(child, depth + 1) for child in process.children() if child.pid not in others]
        except psutil.Error:  # ended meanwhile
            continue
    usage = Usage(pid, 0, 0.0, 0, 0)
    for process in processes:
        try:
            with process.oneshot():
                times = process.cpu_times()
                resident = resident_bytes(process)
                allocated = allocated_bytes(process.pid)
                usage.memory_bytes += resident
                usage.allocated_bytes += resident if allocated is None else allocated
                usage.cpu_s += times.user + times.system
                usage.fds += process.num_fds()
                usage.threads += process.num_threads()
                usage.processes += 1
        except psutil.Error:  # a child that ended between the listing and the look
            continue
    return usage


def disk_bytes(path: Path) -> int:
    """Bytes allocated on disk under ``path`` (blocks, as du counts: the broker's indexes are sparse)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
            except OSError:  # removed meanwhile (a merged part, a deleted segment)
                continue
    return total


class SignalLatency:
    """Reads the ticks and signals topics from their ends; turns each signal into its tick-to-signal latency.

    Latency = the signal's produce time - its closing tick's produce time, both the Kafka
    timestamps their producers set (CreateTime, ms): the ingest's hop into the dataflow, the
    dataflow, its model call and the signal's publish. Read from the messages, not from when
    this reader got them, so a reader slowed by the load cannot shrink or stretch the figure.
    """

    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        from tickwave.timeframes import TIMEFRAMES_MS

        self.settings = settings
        self.stop = stop
        self.wait_ms = settings.streams.late_wait_ms
        self.timeframes_ms = TIMEFRAMES_MS
        self.lock = threading.Lock()
        self.ticks: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))  # time_ms, produced_ms
        self.signals: list[tuple[str, int, int]] = []  # symbol, closing tick's time_ms, produced_ms
        self.thread = threading.Thread(target=self._read, name="soak-latency", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _read(self) -> None:
        from confluent_kafka import OFFSET_END, TopicPartition

        from adapters.bus import make_consumer, resolve_admin
        from tickwave.contracts import Signal, Tick, decode
        from tickwave.errors import ContractError
        from tickwave.topics import SIGNALS, TICKS, topic_name

        ticks_topic, signals_topic = topic_name(self.settings, TICKS), topic_name(self.settings, SIGNALS)
        consumer = make_consumer(resolve_admin(self.settings), f"soak-latency-{time.time_ns()}", "latency")
        try:
            assigned = []
            for topic in (ticks_topic, signals_topic):
                partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
                assigned += [TopicPartition(topic, partition, OFFSET_END) for partition in partitions]
            consumer.assign(assigned)
            while not self.stop.is_set():
                for message in consumer.consume(1000, 0.05):
                    if message.error() is not None:
                        continue
                    produced_ms = message.timestamp()[1]
                    try:
                        item = decode(message.value(), Tick if message.topic() == ticks_topic else Signal)
                    except ContractError:  # not this reader's to judge: the flow quarantines what it cannot read
                        continue
                    if isinstance(item, Tick):
                        tick = item
                        with self.lock:
                            times, produced = self.ticks[tick.symbol]
                            times.append(tick.time_ms)
                            produced.append(produced_ms)
                        continue
                    if not isinstance(item, Signal):
                        continue
                    signal = item
                    length_ms = self.timeframes_ms.get(signal.timeframe)
                    if length_ms is not None:
                        closing_ms = signal.bar_start_ms + length_ms + self.wait_ms
                        with self.lock:
                            self.signals.append((signal.symbol, closing_ms, produced_ms))
        finally:
            consumer.close()

    def take(self, settle_ms: int = 2_000, keep_ms: int = 120_000) -> list[float]:
        """The latencies (ms) of the signals produced more than ``settle_ms`` ago; forget ticks older than ``keep_ms``.

        A signal waits ``settle_ms`` so that its closing tick, read from another partition, is in.
        """
        now_ms = time.time_ns() // 1_000_000
        latencies: list[float] = []
        with self.lock:
            pending = []
            for symbol, closing_ms, produced_ms in self.signals:
                if now_ms - produced_ms < settle_ms:
                    pending.append((symbol, closing_ms, produced_ms))
                    continue
                times, produced = self.ticks.get(symbol, ([], []))
                index = bisect.bisect_left(times, closing_ms)
                if index < len(times):
                    latencies.append(float(produced_ms - produced[index]))
            self.signals = pending
            for times, produced in self.ticks.values():
                cut = bisect.bisect_left(produced, now_ms - keep_ms)
                del times[:cut], produced[:cut]
        return latencies


class Sampler:
    """Takes one :class:`Sample`: the services' process trees, the disks, the parts, the lags, the tick count."""

    def __init__(self, settings: Settings) -> None:
        from app.services.registry import embedded_services
        from app.services.supervisor import Supervisor

        self.settings = settings
        self.supervisor = Supervisor(settings)
        self.services = embedded_services(settings)
        self.previous: dict[str, tuple[float, Usage]] = {}

    def data_dir(self, name: str) -> Path:
        return self.supervisor.data_dir(next(service for service in self.services if service.name == name))

    def take(self, at_s: float, latencies: list[float]) -> Sample:
        from app.services.probes import pipeline_lags

        sample = Sample(at_s=at_s, ticks=self.ticks_sent())
        now = time.monotonic()
        endpoints = {service.name: self.supervisor.endpoint(service.name) for service in self.services}
        pids = {name: endpoint.pid for name, endpoint in endpoints.items() if endpoint is not None}
        for service in self.services:
            pid = pids.get(service.name)
            others = frozenset(pids.values()) - ({pid} if pid is not None else set())
            usage = tree_usage(pid, others) if pid is not None else None
            if usage is None:
                continue
            if service.name == "orchestration" and pid is not None:
                # Its own processes (the code server, the webserver, the daemon: its children) apart from
                # the runs the code server starts and ends: these would make the slope a sawtooth.
                whole, usage = usage, tree_usage(pid, others, max_depth=1) or usage
                sample.runs = {
                    "processes": whole.processes - usage.processes,
                    "memory_mb": (whole.memory_bytes - usage.memory_bytes) / 1e6,
                }
            before = self.previous.get(service.name)
            figures = sample.services[service.name] = {
                "pid": usage.pid,
                "memory_mb": usage.memory_bytes / 1e6,
                "allocated_mb": usage.allocated_bytes / 1e6,
                "fds": usage.fds,
                "threads": usage.threads,
            }
            if before is not None and before[1].pid == usage.pid and now > before[0]:  # none at the first sample
                figures["cpu_pct"] = 100.0 * max(0.0, usage.cpu_s - before[1].cpu_s) / (now - before[0])
            self.previous[service.name] = (now, usage)
        sample.kafka_bytes = disk_bytes(self.data_dir("kafka"))
        sample.warehouse_bytes = disk_bytes(self.data_dir("warehouse"))
        from adapters.warehouse.client import connect

        client = connect(self.settings)
        try:
            sample.parts, sample.warehouse_active_bytes = self.active_parts(client)
            sample.engine = self.engine_memory(client)
        finally:
            client.close()
        if latencies:
            p50, p99 = np.percentile(latencies, [50, 99])
            sample.latency_ms = {
                "count": len(latencies),
                "p50": float(p50),
                "p99": float(p99),
                "max": float(max(latencies)),
            }
        sample.lags = pipeline_lags(self.settings)
        return sample

    @staticmethod
    def active_parts(client: Client) -> tuple[dict[str, int], int]:
        """Active parts per table, and their bytes on disk in all."""
        from adapters.warehouse.parts import active_parts

        stored = client.query(
            "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = currentDatabase()"
        ).result_rows[0][0]  # a sum() over no row is 0
        return {table: parts for table, (_busiest, parts) in active_parts(client).items()}, int(stored)

    @staticmethod
    def engine_memory(client: Client) -> dict[str, int]:
        """The engine's tracked memory and each non-empty cache's bytes (empty when the engine cannot say)."""
        try:
            rows = client.query(ENGINE_MEMORY_SQL).result_rows
        except Exception:  # a probe must not end the run: the sample then has no engine figures
            logger.warning("soak: the warehouse's system.metrics could not be read", exc_info=True)
            return {}
        return {str(metric): int(value) for metric, value in rows}

    def ticks_sent(self) -> int:
        from confluent_kafka import TopicPartition

        from adapters.bus import make_consumer, resolve_admin
        from tickwave.topics import TICKS, topic_name

        topic = topic_name(self.settings, TICKS)
        consumer = make_consumer(resolve_admin(self.settings), f"soak-offsets-{time.time_ns()}")
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            return sum(
                consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
                for partition in partitions
            )
        finally:
            consumer.close()
