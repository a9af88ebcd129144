"""Warehouse benchmark: the embedded ClickHouse HTTP service against in-process chdb, same run.

Measures insert throughput (Arrow batches of 1k, 10k and 100k rows; Python row inserts;
the BatchWriter) and query latency (count, GROUP BY symbol, 1-minute OHLC) over 1M and
10M ticks, once through the HTTP service with clickhouse-connect and once with chdb in
this process; the read-only policy's cost per request over HTTP (the analyst's
``SELECT 1``, cold and cached, beside the engine's own ``SELECT 1`` as the service user,
which the policy does not see); and the server's peak and settled RSS under each bomb
class of ``tests/integration/warehouse/bombs.py``; and first, the writer's 1,000-row insert
p50/p99 alone and under each attack of ``bench/warehouse_attacks.py`` (idle connections,
huge heads, policy and decompression bombs, the analyst's unread results and trickled
uploads refused a slot, silent connections to the metrics port, password guesses), with
the server's RSS 10 s after each and, beside the writer, a new service-user connection's
``SELECT 1`` and a scrape of the warehouse's metrics every 0.25 s; and a 1M-row Native result
sent plain (``compress=0``) and in ClickHouse's block framing (``compress=1``, LZ4 and ZSTD), the
arms interleaved. It prints one table.

    .venv/bin/python -m bench.warehouse [--quick] [--security-only] [--attacks-only] [--compression-only]
        [--attack TEXT]... [--warehouse-nice N]

It starts its own warehouse on a free port in a temporary state dir and stops it at the
end. Figures from one run are recorded in bench/README.md.
"""

from __future__ import annotations

import argparse
import io
import itertools
import multiprocessing
import os
import platform
import statistics
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from rich.console import Console
from rich.table import Table as RichTable

from adapters.endpoints import LOOPBACK, Endpoint
from adapters.metrics import recorded_port
from adapters.warehouse.client import connect
from adapters.warehouse.credentials import Credentials, resolve_credentials
from adapters.warehouse.writer import BatchWriter, WriterConfig
from app.services.supervisor import Supervisor
from app.services.warehouse import WarehouseService
from bench.summary import record
from bench.warehouse_attacks import ATTACKS, Attack, run_when_ready
from tests.integration.warehouse.bombs import BOMBS, footprint
from tests.integration.warehouse.http import Response, post
from tickwave.config import Settings, load_settings
from tickwave.warehouse.tables import TICKS, Table, to_arrow
from warehouse_server.query.memory import PURGE_INTERVAL_S
from warehouse_server.query.priority import LOWEST_NICENESS

console = Console(width=150)
SYMBOLS = np.array(["EURUSD", "USDJPY", "GBPUSD", "AUDUSD", "USDCHF", "USDCAD", "NZDUSD", "EURJPY", "EURGBP", "XAUUSD"])
START_MS = 1_767_225_600_000  # 2026-01-01
DDL = """
CREATE TABLE IF NOT EXISTS {name} (
    symbol LowCardinality(String), time_ms DateTime64(3, 'UTC'), seq UInt32, bid Float64, ask Float64,
    last Float64, volume Float64, flags UInt32, source LowCardinality(String)
) ENGINE = MergeTree PARTITION BY toYYYYMM(time_ms) ORDER BY (symbol, time_ms, seq)
"""
GENERATE = """
INSERT INTO {name}
SELECT
    ['EURUSD','USDJPY','GBPUSD','AUDUSD','USDCHF','USDCAD','NZDUSD','EURJPY','EURGBP','XAUUSD'][number % 10 + 1],
    fromUnixTimestamp64Milli(toInt64({start} + intDiv(number, 10) * 10), 'UTC'),
    0, 1 + (number % 1000) / 100000, 1.0002 + (number % 1000) / 100000, 0, 1, 0, 'bench'
FROM numbers({rows})
"""
TABLES = ("ins_1k", "ins_10k", "ins_100k", "ins_parallel", "ins_rows", "ins_writer", "ticks_1m", "ticks_10m")
QUERIES = {
    "count": "SELECT count() FROM {name}",
    "GROUP BY symbol": "SELECT symbol, count(), avg(bid), max(ask) FROM {name} GROUP BY symbol",
    "1-minute OHLC": (
        "SELECT symbol, toStartOfMinute(time_ms) AS minute, argMin(bid, time_ms) AS open, max(bid) AS high, "
        "min(bid) AS low, argMax(bid, time_ms) AS close, count() AS ticks FROM {name} "
        "GROUP BY symbol, minute ORDER BY symbol, minute"
    ),
}


@dataclass
class Row:
    measurement: str
    http: str
    local: str
    note: str = ""


def arrow_batch(rows: int, offset: int) -> pa.Table:
    index = np.arange(offset, offset + rows)
    return pa.table(
        {
            "symbol": pa.array(SYMBOLS[index % len(SYMBOLS)]),
            "time_ms": pa.array(START_MS + index, pa.timestamp("ms", tz="UTC")),
            "seq": pa.array(np.zeros(rows, dtype=np.uint32)),
            "bid": pa.array(1.0 + (index % 1000) / 100000),
            "ask": pa.array(1.0002 + (index % 1000) / 100000),
            "last": pa.array(np.zeros(rows)),
            "volume": pa.array(np.ones(rows)),
            "flags": pa.array(np.zeros(rows, dtype=np.uint32)),
            "source": pa.array(np.full(rows, "bench")),
        }
    )


def ipc_stream(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def rate(rows: int, seconds: float) -> str:
    return f"{rows / seconds / 1e6:.2f} M rows/s"


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def latency_samples(action: Callable[[], object], runs: int) -> list[float]:
    """Milliseconds of ``runs`` calls after a warm-up, sorted."""
    action()  # warm-up
    return sorted(timed(action) * 1000 for _ in range(runs))


def latencies(action: Callable[[], object], runs: int) -> str:
    samples = latency_samples(action, runs)
    return f"p50 {statistics.median(samples):.1f} ms, min {samples[0]:.1f}"


class Local:
    """In-process chdb on its own directory (another directory than the service's)."""

    def __init__(self, path: Path) -> None:
        import chdb

        self.connection = chdb.connect(str(path))

    def command(self, sql: str) -> None:
        self.connection.query(sql, "Native")

    def insert_arrow(self, table: str, batch: pa.Table) -> None:
        with self.connection.send_insert(f"INSERT INTO {table}", "ArrowStream") as inserter:
            inserter.append(ipc_stream(batch))
            inserter.finish()

    def count(self, table: str) -> int:
        return int(self.connection.query(f"SELECT count() FROM {table}", "CSV").bytes().strip())


def insert_all(target: Client | Local, table: str, batches: list[pa.Table]) -> None:
    for batch in batches:
        target.insert_arrow(table, batch)


def post_as_analyst(
    address: str, credentials: Credentials, body: bytes, headers: dict[str, str], params: Mapping[str, str]
) -> Response:
    return post(address, credentials, body, analyst=True, headers=headers, **params)


def rates(rows: int, seconds: list[float]) -> str:
    """Median and best of repeated runs: the machine is shared, so single runs are noisy."""
    per_s = sorted(rows / second for second in seconds)
    return f"{statistics.median(per_s) / 1e6:.2f} M rows/s (best {per_s[-1] / 1e6:.2f})"


def bench_arrow_inserts(client: Client, local: Local, scale: int, rounds: int) -> list[Row]:
    rows: list[Row] = []
    sizes = ((1_000, 200_000, "ins_1k"), (10_000, 1_000_000, "ins_10k"), (100_000, 2_000_000, "ins_100k"))
    for size, total, table in sizes:
        total //= scale
        batches = [arrow_batch(size, offset) for offset in range(0, total, size)]
        http_s: list[float] = []
        local_s: list[float] = []
        for _ in range(rounds):  # alternate, so both sides see the same background load
            http_s.append(timed(partial(insert_all, client, table, batches)))
            local_s.append(timed(partial(insert_all, local, table, batches)))
        assert client.command(f"SELECT count() FROM {table}") == total * rounds == local.count(table)
        note = f"{statistics.median(http_s) / len(batches) * 1000:.1f} ms per HTTP insert (median)"
        label = f"insert Arrow, {size:,}-row batches ({total:,} rows) x{rounds}"
        rows.append(Row(label, rates(total, http_s), rates(total, local_s), note))
        median = statistics.median(total / second for second in http_s) / 1e6
        targeted = size == 10_000
        record(
            label,
            median,
            "M rows/s",
            baseline=f"in-process chdb {rates(total, local_s)}",
            target=">= 1M rows/s" if targeted else "",
            is_met=median >= 1 if targeted else None,
        )
    return rows


def bench_concurrent_inserts(settings: Settings, scale: int, writers: int = 4) -> Row:
    total = 1_000_000 // scale
    batches = [arrow_batch(10_000, offset) for offset in range(0, total, 10_000)]
    clients = [connect(settings, database=settings.clickhouse.database) for _ in range(writers)]

    def insert_share(index: int) -> None:
        for batch in batches[index::writers]:
            clients[index].insert_arrow("ins_parallel", batch)

    threads = [threading.Thread(target=insert_share, args=(index,)) for index in range(writers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert clients[0].command("SELECT count() FROM ins_parallel") == total
    for client in clients:
        client.close()
    label = f"insert Arrow, 10,000-row batches, {writers} clients at once ({total:,} rows)"
    return Row(label, rate(total, elapsed), "-", "aggregate over concurrent HTTP inserts")


def bench_row_inserts(client: Client, settings: Settings, scale: int) -> list[Row]:
    total = 200_000 // scale
    python_rows = arrow_batch(total, 0).to_pylist()
    columns = TICKS.column_names
    row_lists = [[row[column] for column in columns] for row in python_rows]
    rows_s = timed(
        lambda: [
            client.insert("ins_rows", row_lists[i : i + 10_000], column_names=columns) for i in range(0, total, 10_000)
        ]
    )
    writer_rows = [{**row, "time_ms": int(row["time_ms"].timestamp() * 1000)} for row in python_rows]
    to_arrow(TICKS, {"symbol": ["warm-up"]})  # pyarrow imports pandas on its first conversion (~1.5 s, once)
    writer_client = connect(settings, database=settings.clickhouse.database)
    writer = BatchWriter(writer_client, Table("ins_writer", TICKS.schema), WriterConfig(max_rows=10_000))

    def write_and_close() -> None:
        writer.write(writer_rows)
        writer.close()

    writer_s = timed(write_and_close)
    writer_client.close()
    return [
        Row(
            f"insert Python rows, 10,000 per insert ({total:,} rows)",
            rate(total, rows_s),
            "-",
            "clickhouse-connect serializes Native in Python",
        ),
        Row(
            f"BatchWriter, dict rows, 10,000-row batches ({total:,} rows)",
            rate(total, writer_s),
            "-",
            f"{writer.stats.batches_written} batches, {writer.stats.retries} retries",
        ),
    ]


def bench_queries(client: Client, local: Local, scale: int, runs: int) -> list[Row]:
    rows: list[Row] = []
    for name, ticks in (("ticks_1m", 1_000_000 // scale), ("ticks_10m", 10_000_000 // scale)):
        generate = GENERATE.format(name=name, start=START_MS, rows=ticks)
        client.command(generate)
        local.command(generate)
        for label, sql in QUERIES.items():
            query = sql.format(name=name)
            http = latency_samples(partial(client.raw_query, query, fmt="Native"), runs)
            in_process = latency_samples(partial(local.connection.query, query, "Native"), runs)
            http_p50, local_p50 = statistics.median(http), statistics.median(in_process)
            rows.append(
                Row(
                    f"query {label} over {ticks:,} ticks",
                    f"p50 {http_p50:.1f} ms, min {http[0]:.1f}",
                    f"p50 {local_p50:.1f} ms, min {in_process[0]:.1f}",
                )
            )
            record(
                f"query {label} over {ticks:,} ticks, HTTP p50",
                http_p50,
                "ms",
                baseline=f"in-process chdb p50 {local_p50:.1f} ms",
            )
    http_select = latencies(lambda: client.raw_query("SELECT 1", fmt="Native"), runs * 10)
    local_select = latencies(lambda: local.connection.query("SELECT 1", "Native"), runs * 10)
    rows.append(Row("query SELECT 1 (request overhead)", http_select, local_select))
    return rows


POINT_QUERY = (
    "SELECT bid, ask FROM {name} WHERE symbol = 'EURUSD' AND time_ms = fromUnixTimestamp64Milli(toInt64({at}), 'UTC')"
)


def percentiles(samples_us: list[float]) -> str:
    ordered = sorted(samples_us)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered) / 1000:.3f} ms, p99 {p99 / 1000:.3f} ms"


def sample_us(action: Callable[[], object], runs: int) -> list[float]:
    action()
    samples = []
    for _ in range(runs):
        started = time.perf_counter_ns()
        action()
        samples.append((time.perf_counter_ns() - started) / 1000)
    return samples


def bench_policy(settings: Settings, local: Local, scale: int, runs: int) -> list[Row]:
    """The read-only policy's cost (classify + EXPLAIN AST + tree rules) beside the queries it guards."""
    from warehouse_server.security.policy import (
        DatabaseCatalog,
        FunctionCatalog,
        ReadOnlyPolicy,
        Request,
        parse_ast,
        read_catalog,
    )

    name, ticks = "ticks_10m", 10_000_000 // scale
    point = POINT_QUERY.format(name=name, at=START_MS + 5_000)
    ohlc = QUERIES["1-minute OHLC"].format(name=name)
    connection = local.connection._conn
    policy = ReadOnlyPolicy(
        FunctionCatalog(lambda: read_catalog(lambda q: connection.query(q, "TabSeparated").bytes())),
        DatabaseCatalog(lambda: {"default": "Atomic"}),  # in process, the bench's tables are in `default`
    )
    request = Request(is_analyst=True, database="default", output_format="Native")

    def parse_and_check(sql: str) -> None:
        connection.classify_query(sql, "default")
        dump = connection.query("EXPLAIN AST " + sql, "TabSeparatedRaw").bytes().decode()
        policy._decide(parse_ast(dump), request)

    def cached(sql: str) -> None:
        policy.check(
            sql, {}, request, lambda text: connection.query("EXPLAIN AST " + text, "TabSeparatedRaw").bytes().decode()
        )

    service = connect(settings, database=settings.clickhouse.database)
    analyst = connect(settings, readonly=True)
    floor = percentiles(sample_us(lambda: connection.query("SELECT 1", "TabSeparatedRaw"), runs * 200))
    explain = percentiles(sample_us(lambda: connection.query("EXPLAIN AST SELECT 1", "TabSeparatedRaw"), runs * 200))
    rows: list[Row] = [
        Row(
            "floor: in-process SELECT 1 | EXPLAIN AST SELECT 1",
            floor,
            explain,
            "the engine's own cost of any query, measured beside the policy",
        )
    ]
    try:
        for label, sql in (("point query", point), ("1-minute OHLC", ohlc)):
            cold = percentiles(sample_us(partial(parse_and_check, sql), runs * 200))
            warm = percentiles(sample_us(partial(cached, sql), runs * 200))
            rows.append(Row(f"policy parse + check, {label} (cold; cached)", cold, warm, "in process, same engine"))
            query_runs = runs * 100 if label == "point query" else runs
            as_service = percentiles(sample_us(partial(service.raw_query, sql, fmt="Native"), query_runs))
            as_analyst = percentiles(sample_us(partial(analyst.raw_query, sql, fmt="Native"), query_runs))
            rows.append(
                Row(
                    f"{label} over {ticks:,} ticks: service user | analyst",
                    as_service,
                    as_analyst,
                    "HTTP; the analyst's pass through the policy is cached after the first",
                )
            )
    finally:
        service.close()
        analyst.close()
    return rows


def bench_policy_http(settings: Settings, runs: int) -> list[Row]:
    """The read-only policy's cost per request over HTTP, beside the engine's own SELECT 1 on the same path.

    The same client kind, the same POST path and the same tiny query; the service user's
    request is not policed, the analyst's is: cold (a text never seen, so classify +
    EXPLAIN AST + the tree rules run) and cached (the verdict cache hit).
    """
    service = connect(settings, database=settings.clickhouse.database)
    analyst = connect(settings, readonly=True)
    distinct = itertools.count(1_000_000)
    samples = runs * 100
    try:
        engine = sample_us(lambda: service.raw_query("SELECT 1", fmt="TabSeparated"), samples)
        cached = sample_us(lambda: analyst.raw_query("SELECT 1", fmt="TabSeparated"), samples)
        cold = sample_us(lambda: analyst.raw_query(f"SELECT {next(distinct)}", fmt="TabSeparated"), samples)
    finally:
        service.close()
        analyst.close()
    engine_p50 = statistics.median(engine)
    rows = [Row("SELECT 1 over HTTP, service user (no policy)", percentiles(engine), "-", "the engine's own floor")]
    for label, found in (("cold", cold), ("cached", cached)):
        extra_ms = (statistics.median(found) - engine_p50) / 1000
        rows.append(
            Row(
                f"SELECT 1 over HTTP, analyst, policy {label}",
                percentiles(found),
                "-",
                f"policy adds {extra_ms:+.3f} ms at p50",
            )
        )
        record(
            f"read-only policy, {label}, per request over HTTP (p50 added)",
            round(extra_ms, 3),
            "ms",
            baseline=f"SELECT 1 as the service user, {percentiles(engine)}",
        )
    return rows


# A 1M-row result as clickhouse-go and the JDBC driver read it: Native, three columns (~24 MB).
COMPRESSED_RESULT = "SELECT number, toString(number) AS text, number * 1.5 AS value FROM numbers(1000000) FORMAT Native"
COMPRESSION_ARMS: dict[str, dict[str, str]] = {
    "compress=0": {},
    "compress=1, LZ4": {"compress": "1"},
    "compress=1, ZSTD": {"compress": "1", "network_compression_method": "ZSTD"},
}


def bench_compression(settings: Settings, endpoint: Endpoint, runs: int) -> list[Row]:
    """A 1M-row result sent plain and in ClickHouse's block framing (LZ4, ZSTD), the arms interleaved in one run.

    Per arm: the request's wall time at the client (whole body read), the bytes sent and the
    server's CPU seconds (every thread: the engine's and the framing's), medians over ``runs``.
    """
    credentials = resolve_credentials(settings)
    walls: dict[str, list[float]] = {label: [] for label in COMPRESSION_ARMS}
    cpus: dict[str, list[float]] = {label: [] for label in COMPRESSION_ARMS}
    sizes: dict[str, int] = {}
    for label, params in COMPRESSION_ARMS.items():  # a warm-up each
        sizes[label] = len(
            post(endpoint.address, credentials, COMPRESSED_RESULT.encode(), analyst=False, headers={}, **params).body
        )
    for _ in range(runs):
        for label, params in COMPRESSION_ARMS.items():
            cpu_before = _cpu_s(endpoint.pid)
            started = time.perf_counter()
            reply = post(endpoint.address, credentials, COMPRESSED_RESULT.encode(), analyst=False, headers={}, **params)
            walls[label].append(time.perf_counter() - started)
            cpus[label].append(_cpu_s(endpoint.pid) - cpu_before)
            assert reply.status == 200, reply.body[:300]
    plain_ms = statistics.median(walls["compress=0"]) * 1000
    rows: list[Row] = []
    for label in COMPRESSION_ARMS:
        wall_ms = statistics.median(walls[label]) * 1000
        cpu_ms = statistics.median(cpus[label]) * 1000
        rows.append(
            Row(
                f"1M-row Native result, {label}",
                f"{wall_ms:.0f} ms (best {min(walls[label]) * 1000:.0f}), {sizes[label] / 1e6:.1f} MB sent",
                "-",
                f"server CPU {cpu_ms:.0f} ms; {wall_ms - plain_ms:+.0f} ms against compress=0",
            )
        )
        record(
            f"1M-row result over HTTP, {label}",
            round(wall_ms, 1),
            "ms",
            baseline=f"compress=0 {plain_ms:.1f} ms; {sizes[label] / 1e6:.1f} MB sent, server CPU {cpu_ms:.0f} ms",
        )
    return rows


RESULT_BOMB = "SELECT repeat('x', 500000) FROM numbers(200)"
SETTLE_S = 3 * PURGE_INTERVAL_S  # "settled": after the server's memory watch has had its chance to give memory back


def bench_bombs(settings: Settings, endpoint: Endpoint) -> list[Row]:
    """Each bomb class as the analyst: the refusal, and the server's peak and settled RSS around it."""
    credentials = resolve_credentials(settings)
    requests = {
        name: (make_body(), headers, params, code) for name, (make_body, headers, params, code) in BOMBS.items()
    }
    requests[f"{RESULT_BOMB}, max_result_bytes=1000000"] = (
        RESULT_BOMB.encode(),
        {},
        {"max_result_bytes": "1000000", "buffer_size": "0"},
        "396",
    )
    rows: list[Row] = []
    for name, (body, headers, params, code) in requests.items():
        started = time.perf_counter()
        reply, used = footprint(
            endpoint.pid,
            partial(post_as_analyst, endpoint.address, credentials, body, headers, params),
            settle_s=SETTLE_S,
        )
        elapsed_ms = (time.perf_counter() - started - SETTLE_S) * 1000
        outcome = f"code {reply.code}" + ("" if reply.code == code else f" (expected {code})")
        rows.append(
            Row(
                f"bomb: {name} ({len(body):,} B body)",
                f"peak +{used.peak_mib:.0f} MiB, settled +{used.settled_mib:.0f} MiB ({SETTLE_S:.0f} s after)",
                "-",
                f"{outcome} in {elapsed_ms:.0f} ms; RSS before {used.before_mib:.0f} MiB",
            )
        )
        record(
            f"bomb {name}: peak RSS added",
            round(used.peak_mib, 1),
            "MiB",
            baseline=f"settled +{used.settled_mib:.1f} MiB, {outcome}",
        )
    return rows


def _flood(address: str, credentials: Credentials, body: bytes, headers: dict[str, str], done: Any) -> None:
    """Send ``body`` as the analyst, again and again, until ``done`` is set (one process per client)."""
    while not done.is_set():
        post(address, credentials, body, analyst=True, headers=headers)


def _nul_bytes() -> bytes:
    return bytes(256 * 1024)


# name: (the body's maker, the request's headers)
FLOODS: dict[str, tuple[Callable[[], bytes], dict[str, str]]] = {
    "256 KiB of NUL bytes as SQL": (_nul_bytes, {}),
    "the gzip bomb": (BOMBS["gzip"][0], {"Content-Encoding": "gzip"}),
}


def bench_writer_under_flood(settings: Settings, endpoint: Endpoint, seconds: float, clients: int = 4) -> list[Row]:
    """A writer's insert latency alone and while ``clients`` analyst processes flood the service."""
    credentials = resolve_credentials(settings)
    writer = connect(settings, database=settings.clickhouse.database)
    writer.command(DDL.format(name="flooded"))
    batch = arrow_batch(1_000, 0)

    def insert_samples() -> list[float]:
        samples: list[float] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter_ns()
            writer.insert_arrow("flooded", batch)
            samples.append((time.perf_counter_ns() - started) / 1000)
        return samples

    context = multiprocessing.get_context("spawn")
    rows = [Row("writer: 1,000-row Arrow insert, alone", percentiles(insert_samples()), "-", "the baseline")]
    try:
        for label, (make_body, headers) in FLOODS.items():
            done = context.Event()
            body = make_body()
            flooders = [
                context.Process(target=_flood, args=(endpoint.address, credentials, body, headers, done))
                for _ in range(clients)
            ]
            for process in flooders:
                process.start()
            time.sleep(2.0)  # the flooders' interpreters start
            flooded = insert_samples()
            done.set()
            for process in flooders:
                process.join()
            rows.append(
                Row(
                    f"writer: the same insert, {clients} analyst clients sending {label}",
                    percentiles(flooded),
                    "-",
                    "analyst clients in processes of their own",
                )
            )
            record(
                f"writer insert p50 under an analyst flood ({label})",
                round(statistics.median(flooded) / 1000, 1),
                "ms",
                baseline=rows[0].http,
            )
    finally:
        writer.close()
    return rows


def _rss_mib(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / 2**20


ATTACK_SETTLE_S = 10.0  # memory is read this long after an attack ends
# The attacked writer inserts 1,000 rows every 50 ms, 20 inserts a second: a busy pipeline's pace
# (its writers flush a table once a second, or at 10,000 rows). Back to back, its own merges kept
# ~1.8 cores busy and its p50 drifted from 13 to 32 ms over a run, alone: what an attack cost drowned
# in what the writer cost itself.
WRITER_INTERVAL_S = 0.05


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system, every thread) a process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _niced_cpu_s(pid: int, niceness: int) -> float:
    """CPU seconds the threads of ``pid`` at ``niceness`` have used so far (the read-only user's thread)."""
    total = 0.0
    for thread in psutil.Process(pid).threads():
        try:
            if os.getpriority(os.PRIO_PROCESS, thread.id) == niceness:  # niceness is per thread on Linux
                total += thread.user_time + thread.system_time
        except ProcessLookupError:  # the thread ended meanwhile
            continue
    return total


PROBE_INTERVAL_S = 0.25  # a new service-user connection and a scrape of the warehouse's metrics this often
SCRAPE_TIMEOUT_S = 1.0  # Prometheus's scrape timeout at a 1 s interval


class Probes:
    """What the pipeline meets beside the writer: a new service-user connection's ``SELECT 1``, and a scrape.

    Each probe opens a connection of its own, as the supervisor's health check, a reconnecting
    writer, Dagster's runs and Prometheus do; the writer's keep-alive connection does not.
    """

    def __init__(self, endpoint: Endpoint, credentials: Credentials, metrics_address: str | None) -> None:
        self.endpoint, self.credentials, self.metrics_address = endpoint, credentials, metrics_address
        self.service_us: list[float] = []
        self.service_failures = 0
        self.scrapes = 0
        self.scrapes_ok = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probes:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        import http.client

        host, port = self.endpoint.address.rsplit(":", 1)
        user, password = self.credentials.user, self.credentials.password.get_secret_value()
        while not self._done.wait(PROBE_INTERVAL_S):
            started = time.perf_counter_ns()
            connection = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                connection.request("POST", "/", b"SELECT 1", {"X-ClickHouse-User": user, "X-ClickHouse-Key": password})
                is_ok = connection.getresponse().status == 200
            except OSError:
                is_ok = False
            finally:
                connection.close()
            if is_ok:
                self.service_us.append((time.perf_counter_ns() - started) / 1000)
            else:
                self.service_failures += 1
            if self.metrics_address is not None:
                self.scrapes += 1
                try:
                    url = f"http://{self.metrics_address}/metrics"
                    with urllib.request.urlopen(url, timeout=SCRAPE_TIMEOUT_S) as response:
                        self.scrapes_ok += response.status == 200
                except OSError:
                    pass

    def summary(self) -> str:
        service = percentiles(self.service_us) if self.service_us else "none answered"
        return (
            f"new service-user connection {service}, {self.service_failures} failed of "
            f"{len(self.service_us) + self.service_failures}; scrapes answered {self.scrapes_ok} of {self.scrapes}"
        )


@dataclass
class Phase:
    """The writer's insert latencies in one measurement, the probes beside it, and the CPU each side used."""

    samples: list[float]
    failures: int
    server_cpu_s: float
    read_only_cpu_s: float
    attackers_cpu_s: float
    probes: Probes

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)


def bench_writer_under_attacks(
    settings: Settings, endpoint: Endpoint, seconds: float, only: tuple[str, ...] = ()
) -> list[Row]:
    """The writer's 1,000-row insert (paced, :data:`WRITER_INTERVAL_S`) alone and under each attack, same run.

    The attacks are ``bench/warehouse_attacks.py``'s. Each attack is measured right after
    the writer alone (its floor: the writer's own inserts keep the engine merging, so the
    state it meets drifts over a run), the p50 under the attack against that floor's. The
    server's CPU seconds (every thread), its read-only thread's (the
    one at the lowest niceness) and the attacking processes' are read over each
    measurement: they say who paid for the attack.
    Targets: p50 within 2x of alone, no request answered 503 (or failed), the server's RSS
    back within 64 MiB of its floor 10 s after each attack ends.
    """
    credentials = resolve_credentials(settings)
    writer = connect(settings, database=settings.clickhouse.database)
    writer.command(DDL.format(name="attacked"))
    batch = arrow_batch(1_000, 0)
    context = multiprocessing.get_context("spawn")

    def insert_samples() -> tuple[list[float], int]:
        samples: list[float] = []
        failures = 0
        deadline = time.monotonic() + seconds
        next_at = time.monotonic()
        while (now := time.monotonic()) < deadline:
            time.sleep(max(0.0, next_at - now))
            next_at += WRITER_INTERVAL_S
            started = time.perf_counter_ns()
            try:
                writer.insert_arrow("attacked", batch)
            except Exception:  # a 503 or a lost connection: counted, the loop goes on
                failures += 1
            samples.append((time.perf_counter_ns() - started) / 1000)
        return samples, failures

    metrics_port = recorded_port(settings.state_path, "warehouse")
    metrics_address = f"{LOOPBACK}:{metrics_port}" if metrics_port else None

    def measure(attack: Attack | None) -> Phase:
        done = context.Event()
        ready = [context.Event() for _ in range(attack.processes if attack else 0)]
        address = metrics_address if attack is not None and attack.target == "metrics" else endpoint.address
        others = [
            context.Process(target=run_when_ready, args=(attack.loop, event, address, credentials, done))
            for event in ready
            if attack is not None
        ]
        for process in others:
            process.start()
        try:
            for event in ready:  # their interpreters' start-up is not the attack: it is left out of the CPU read
                event.wait(120)
            if others:
                time.sleep(2.0)  # their pressure builds
            server_before = _cpu_s(endpoint.pid)
            read_only_before = _niced_cpu_s(endpoint.pid, LOWEST_NICENESS)
            others_before = sum(_cpu_s(process.pid or 0) for process in others)
            with Probes(endpoint, credentials, metrics_address) as probes:
                samples, failures = insert_samples()
            server_cpu_s = _cpu_s(endpoint.pid) - server_before
            read_only_cpu_s = _niced_cpu_s(endpoint.pid, LOWEST_NICENESS) - read_only_before
            others_cpu_s = sum(_cpu_s(process.pid or 0) for process in others) - others_before
        finally:
            done.set()
            for process in others:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
        return Phase(samples, failures, server_cpu_s, read_only_cpu_s, others_cpu_s, probes)

    first = measure(None)
    floor_rss = _rss_mib(endpoint.pid)
    rows = [
        Row(
            "attack: none (writer's 1,000-row insert alone)",
            percentiles(first.samples),
            "-",
            f"server CPU {first.server_cpu_s:.1f} s in {seconds:.0f} s ({len(first.samples)} inserts); "
            f"RSS floor {floor_rss:.0f} MiB; {first.probes.summary()}",
        )
    ]
    try:
        for label, attack in ATTACKS.items():
            if only and not any(part in label for part in only):
                continue
            alone = measure(None)
            attacked = measure(attack)
            time.sleep(ATTACK_SETTLE_S)
            above_floor = _rss_mib(endpoint.pid) - floor_rss
            ratio = attacked.p50 / alone.p50
            probes = attacked.probes
            is_kept_in = probes.service_failures == 0 and probes.scrapes_ok == probes.scrapes
            is_met = ratio <= 2.0 and attacked.failures == 0 and above_floor <= 64 and is_kept_in
            rows.append(
                Row(
                    f"attack: {label}",
                    f"{percentiles(attacked.samples)}; alone just before: {percentiles(alone.samples)}",
                    "-",
                    f"p50 {ratio:.1f}x alone ({attacked.p50 / first.p50:.1f}x the run's first); "
                    f"server CPU {attacked.server_cpu_s:.1f} s (alone {alone.server_cpu_s:.1f} s), "
                    f"of it the read-only thread {attacked.read_only_cpu_s:.1f} s; "
                    f"attackers {attacked.attackers_cpu_s:.1f} s; "
                    f"{attacked.failures} failed of {len(attacked.samples)}; "
                    f"RSS {above_floor:+.0f} MiB over floor {ATTACK_SETTLE_S:.0f} s after; "
                    f"{attacked.probes.summary()} (alone: {alone.probes.summary()}); "
                    f"{'met' if is_met else 'NOT met'}",
                )
            )
            record(
                f"writer insert p50 under attack: {label}",
                round(attacked.p50 / 1000, 1),
                "ms",
                baseline=(
                    f"alone just before {percentiles(alone.samples)} ({ratio:.1f}x); server CPU "
                    f"{attacked.server_cpu_s:.1f} s vs {alone.server_cpu_s:.1f} s alone, read-only thread "
                    f"{attacked.read_only_cpu_s:.1f} s, attackers {attacked.attackers_cpu_s:.1f} s"
                ),
                target="p50 <= 2x alone, no 503, RSS within 64 MiB of floor after 10 s, every new service-user "
                "connection and scrape answered",
                is_met=is_met,
            )
    finally:
        writer.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes (a smoke run, not for the README)")
    parser.add_argument("--security-only", action="store_true", help="only the policy's cost and the bombs")
    parser.add_argument("--attacks-only", action="store_true", help="only the writer's latency under each attack")
    parser.add_argument(
        "--compression-only", action="store_true", help="only the 1M-row result, compress=0 against compress=1"
    )
    parser.add_argument(
        "--attack", action="append", default=[], help="only the attacks whose name holds this text (repeatable)"
    )
    parser.add_argument(
        "--warehouse-nice", type=int, default=10, help="the warehouse's niceness (production's 10; 0 on a loaded VM)"
    )
    options = parser.parse_args()
    scale = 10 if options.quick else 1
    runs = 3 if options.quick else 10

    console.print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start"
    )
    state_dir = Path(tempfile.mkdtemp(prefix="tickwave-bench-"))
    settings = load_settings(
        state_dir=state_dir, clickhouse={"port": 0, "nice": options.warehouse_nice}, log_level="WARNING"
    )
    supervisor = Supervisor(settings)
    service = WarehouseService(settings)
    endpoint = supervisor.start(service)
    assert isinstance(endpoint, Endpoint)
    client = connect(settings, database=settings.clickhouse.database, send_receive_timeout=600)
    local = Local(state_dir / "in-process-chdb")
    try:
        results: list[Row] = []
        if options.compression_only:
            results += bench_compression(settings, endpoint, runs)
        elif not options.attacks_only:
            results += [
                *bench_policy_http(settings, runs),
                *bench_bombs(settings, endpoint),
                *bench_writer_under_flood(settings, endpoint, seconds=3 if options.quick else 8),
            ]
        if not (options.security_only or options.attacks_only or options.compression_only):
            for target in (client, local):
                for name in TABLES:
                    target.command(DDL.format(name=name))
            results += [
                *bench_arrow_inserts(client, local, scale, rounds=1 if options.quick else 3),
                bench_concurrent_inserts(settings, scale),
                *bench_row_inserts(client, settings, scale),
                *bench_queries(client, local, scale, runs),
                *bench_policy(settings, local, scale, runs),
                *bench_compression(settings, endpoint, runs),
            ]
        # Last: the password guesses lock the analyst out for the failed-login window.
        results = (
            results
            if options.compression_only
            else [
                *bench_writer_under_attacks(
                    settings, endpoint, seconds=3 if options.quick else 8, only=tuple(options.attack)
                ),
                *results,
            ]
        )
    finally:
        client.close()
        supervisor.stop(service)
    table = RichTable(
        "measurement",
        "HTTP service (clickhouse-connect)",
        "in-process chdb",
        "note",
        title="Tickwave warehouse benchmark",
    )
    for row in results:
        table.add_row(row.measurement, row.http, row.local, row.note)
    console.print(table)
    console.print(f"load average {os.getloadavg()[0]:.1f} at end; state dir {state_dir}")


if __name__ == "__main__":
    main()
