"""Replay throughput into a real Kafka broker, beside a plain confluent-kafka loop (the ceiling).

Run: ``.venv/bin/python bench/ingest.py [--ticks 1000000] [--repeat 3]``

What it does, all in one run:

1. starts its own embedded Kafka (``bench.embedded``: the authenticated default, free loopback ports, a
   temporary state directory) and stops it at the end;
2. simulates ``--ticks`` ticks of EURUSD, USDJPY and XAUUSD and writes them as one
   Parquet file (generic columns) and as three MT5 "Export ticks" CSV files;
3. measures, ``--repeat`` times each, into fresh 6-partition topics:
   - **ceiling**: a plain confluent-kafka loop producing the same ticks, already
     serialized to JSON, with the same producer settings;
   - **replay parquet** and **replay mt5 csv**: ``ReplaySource`` -> ``KafkaSink`` via
     ``run_ingest`` (read, parse, validate, number, serialize, produce, flush);
   - the sources alone (no Kafka), to show where the time goes.

   The runs are interleaved (ceiling, parquet, csv, ceiling, ...) so that a busy spell on a
   shared machine hits them alike; the median and the best of ``--repeat`` are printed.

Every figure includes the final flush (all messages acknowledged, ``acks=all``).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import confluent_kafka
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

# Run as a script, this folder comes first on sys.path and bench/streams.py would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from adapters.bus import make_admin, make_producer, resolve_bootstrap  # noqa: E402
from adapters.topics import create_topics  # noqa: E402
from bench.embedded import embedded_bus  # noqa: E402
from bench.summary import record  # noqa: E402
from streams.ingest.adapters.files import ReplayOptions, ReplaySource, write_mt5_export  # noqa: E402
from streams.ingest.adapters.kafka import KafkaSink  # noqa: E402
from streams.ingest.batches import TickBatch  # noqa: E402
from streams.ingest.logic import TickValidator  # noqa: E402
from streams.ingest.runner import run_ingest  # noqa: E402
from streams.ingest.simulation import SimulatedMarket  # noqa: E402
from tickwave.clock import ManualClock, SystemClock  # noqa: E402
from tickwave.config import Settings, default_symbols  # noqa: E402
from tickwave.timezones import WallClock  # noqa: E402
from tickwave.topics import TICKS, TICKS_DLQ, topic_name  # noqa: E402

SYMBOLS = ["EURUSD", "USDJPY", "XAUUSD"]
START_MS = 1_709_539_200_000  # 2024-03-04 08:00 UTC


def simulate(count: int) -> TickBatch:
    registry = default_symbols()
    market = SimulatedMarket(SYMBOLS, registry, rate=20_000.0, seed=1, start_ms=START_MS)
    validator = TickValidator(registry, "sim", 0, ManualClock(2**62))
    batches, total = [], 0
    while total < count:
        batch = validator.validate(market.advance(10_000)).ticks
        batches.append(batch)
        total += len(batch)
    return TickBatch.concat(batches).take(slice(0, count))


def write_files(ticks: TickBatch, folder: Path) -> tuple[Path, list[Path]]:
    names = np.array(ticks.symbols, dtype=object)[ticks.symbol_code]
    table = pa.table(
        {
            "symbol": pa.array(names, pa.string()).dictionary_encode(),
            "time_ms": ticks.time_ms,
            "bid": ticks.bid,
            "ask": ticks.ask,
            "last": ticks.last,
            "volume": ticks.volume,
            "flags": ticks.flags,
        }
    )
    parquet = folder / "ticks.parquet"
    pq.write_table(table, parquet, row_group_size=131_072)
    csvs = []
    registry = default_symbols()
    for code, symbol in enumerate(ticks.symbols):
        path = folder / f"{symbol}_202403040800_202403041200.csv"
        write_mt5_export(path, ticks.take(ticks.symbol_code == code), registry[symbol].digits, WallClock("UTC"))
        csvs.append(path)
    return parquet, csvs


def fresh_topics(base: Settings) -> Settings:
    settings = base.model_copy(
        update={"kafka": base.kafka.model_copy(update={"topic_prefix": f"b{uuid.uuid4().hex[:8]}."})}
    )
    create_topics(make_admin(resolve_bootstrap(settings)), settings)
    return settings


def ceiling(settings: Settings, messages: list[tuple[bytes, bytes]]) -> float:
    producer = make_producer(resolve_bootstrap(settings), "bulk", **{"delivery.report.only.error": True})
    topic, produce = topic_name(settings, TICKS), producer.produce
    started = time.perf_counter()
    for key, value in messages:
        try:
            produce(topic, value, key)
        except BufferError:
            producer.poll(0.05)
            produce(topic, value, key)
    remaining = producer.flush(60)
    elapsed = time.perf_counter() - started
    assert remaining == 0, f"{remaining} messages not delivered"
    return len(messages) / elapsed


def replay_into_kafka(settings: Settings, paths: list[Path], expected: int) -> float:
    stop = threading.Event()
    source = ReplaySource(paths, ReplayOptions(clock=WallClock("UTC")), settings.symbols, 60_000, stop, SystemClock())
    sink = KafkaSink(
        resolve_bootstrap(settings),
        topic_name(settings, TICKS),
        topic_name(settings, TICKS_DLQ),
        "replay",
        SystemClock(),
    )
    started = time.perf_counter()
    report = run_ingest(source, sink, stop, stats_interval_s=3600, flush_timeout_s=60)
    elapsed = time.perf_counter() - started
    assert report.is_clean and report.ticks == expected and report.dead_letters == 0, report
    return report.ticks / elapsed


def source_only(settings: Settings, paths: list[Path], expected: int) -> float:
    source = ReplaySource(
        paths, ReplayOptions(clock=WallClock("UTC")), settings.symbols, 60_000, threading.Event(), SystemClock()
    )
    started = time.perf_counter()
    count = sum(len(batch.ticks) for batch in source.batches())
    elapsed = time.perf_counter() - started
    assert count == expected
    return count / elapsed


def measure(runs: dict[str, Callable[[], float]], repeat: int, pause_s: float = 2.0) -> dict[str, float]:
    """Run each measurement ``repeat`` times, round-robin (so a busy spell hits all alike); print and return medians."""
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):
        for name, run in runs.items():
            rates[name].append(run())
            time.sleep(pause_s)  # let the broker settle between runs
    for name, values in rates.items():
        print(f"  {name:<34} median {statistics.median(values):>10,.0f}/s   best {max(values):>10,.0f}/s", flush=True)
    return {name: statistics.median(values) for name, values in rates.items()}


def machine() -> str:
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"confluent-kafka {confluent_kafka.version()[0]} (librdkafka {confluent_kafka.libversion()[0]}), "
        f"pyarrow {pa.__version__}, load average {os.getloadavg()[0]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="tickwave-bench-") as folder:
        print(f"starting Kafka in {folder} ...", flush=True)
        with embedded_bus() as settings:  # the authenticated default, as the super user
            ticks = simulate(args.ticks)
            parquet, csvs = write_files(ticks, Path(folder))
            messages = list(zip(*ticks.encoded(), strict=True))
            sizes = (
                f"parquet {parquet.stat().st_size / 1e6:.1f} MB, csv {sum(p.stat().st_size for p in csvs) / 1e6:.1f} MB"
            )
            print(f"{len(ticks):,} ticks ({sizes}); {machine()}", flush=True)
            medians = measure(
                {
                    "ceiling: plain produce loop": lambda: ceiling(fresh_topics(settings), messages),
                    "replay parquet -> kafka": lambda: replay_into_kafka(fresh_topics(settings), [parquet], len(ticks)),
                    "replay mt5 csv -> kafka": lambda: replay_into_kafka(fresh_topics(settings), csvs, len(ticks)),
                },
                args.repeat,
            )
            ceiling_rate = medians["ceiling: plain produce loop"]
            parquet_rate = medians["replay parquet -> kafka"]
            record(
                "replay parquet -> kafka, median",
                parquet_rate,
                "ticks/s",
                baseline=f"plain produce loop {ceiling_rate:,.0f} ticks/s",
                target=">= 300k ticks/s",
                is_met=parquet_rate >= 300_000,
            )
            record(
                "replay mt5 csv -> kafka, median",
                medians["replay mt5 csv -> kafka"],
                "ticks/s",
                baseline=f"plain produce loop {ceiling_rate:,.0f} ticks/s",
            )
            sources = measure(
                {
                    "parquet source alone": lambda: source_only(settings, [parquet], len(ticks)),
                    "mt5 csv source alone": lambda: source_only(settings, csvs, len(ticks)),
                },
                args.repeat,
                pause_s=0,
            )
            for name, value in sources.items():
                record(f"{name}, median", value, "ticks/s", baseline="(the replay rows above include it)")
        print("Kafka stopped", flush=True)


if __name__ == "__main__":
    main()
