"""Idle TCP connections to the broker from any local account: the flood, and what it costs the pipeline.

    .venv/bin/python -m bench.broker_flood [--connections 20000] [--ticks 200000] [--signals 100]

The benchmark starts its own embedded broker (the authenticated default) and the execution
process on it, then measures, alone and again under the flood, in one run: the ingest writer's
throughput (``KafkaSink``, simulated ticks, to acknowledgement) and the execution process's
decision latency (a signed signal produced until its ``OrderSubmitted``/``OrderDenied`` is read
back from ``orders.events``), with the broker's open files. Figures are in bench/README.md.

``flood(address, 20_000)`` opens that many connections to ``address`` from child processes
(5,000 each, under a default file limit), from several loopback source addresses (a client
on loopback picks any of 127.0.0.0/8), and holds them without sending a byte until the
block ends; a connection the broker closes is opened again, so the pressure stays on.
Connections are opened at a pace the broker can accept (``OPENED_PER_S`` per process): a burst
would overflow the kernel's accept queue, and its extra connections, established on the client's
side only, would never reach the broker. Attempts the broker does not accept yet wait in the
kernel's queue, as an attacker's would.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Event
from typing import Any

PER_PROCESS = 5_000
OPENED_PER_S = 250  # per process: a pace the broker's acceptor keeps up with (a burst overflows the kernel's queue)
SOURCES = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


@dataclass
class FloodCounts:
    """What the flood's processes reported when it ended."""

    attempts: int = 0  # connections opened, the reopened ones included
    peak_established: int = 0  # most connections established at one time, every process added up


def _connect(address: tuple[str, int], source: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.bind((source, 0))
        sock.connect_ex(address)
    except OSError:
        sock.close()
        return None
    return sock


def _hold(address: tuple[str, int], count: int, source: str, done: Event, report: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    poller = select.epoll()
    sockets: dict[int, socket.socket] = {}
    attempts = peak = 0
    started = time.monotonic()
    while not done.is_set():
        allowed = int((time.monotonic() - started) * OPENED_PER_S) - attempts
        while len(sockets) < count and allowed > 0 and not done.is_set():
            allowed -= 1
            sock = _connect(address, source)
            if sock is None:
                break
            attempts += 1
            sockets[sock.fileno()] = sock
            poller.register(sock.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)
        established = 0
        for fileno, events in poller.poll(0.1):
            sock = sockets[fileno]
            if events & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                poller.unregister(fileno)
                sockets.pop(fileno).close()  # closed by the broker (or refused): opened again next round
            elif events & select.EPOLLOUT:
                poller.modify(fileno, select.EPOLLIN | select.EPOLLRDHUP)  # connected: now only its close matters
        for sock in sockets.values():
            with contextlib.suppress(OSError):
                sock.getpeername()
                established += 1
        peak = max(peak, established)
    for sock in sockets.values():
        sock.close()
    report.put((attempts, peak))


@contextlib.contextmanager
def flood(address: str, count: int = 20_000) -> Iterator[FloodCounts]:
    """Hold ``count`` idle connections to ``address`` (``host:port``) while the block runs."""
    host, port = address.rsplit(":", 1)
    target = (host, int(port))
    context = multiprocessing.get_context("spawn")
    done, report = context.Event(), context.Queue()
    shares = [min(PER_PROCESS, count - start) for start in range(0, count, PER_PROCESS)]
    workers = [
        context.Process(target=_hold, args=(target, share, SOURCES[index % len(SOURCES)], done, report), daemon=True)
        for index, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    counts = FloodCounts()
    try:
        yield counts
    finally:
        done.set()
        deadline = time.monotonic() + 30
        for _worker in workers:
            with contextlib.suppress(Exception):
                attempts, peak = report.get(timeout=max(0.1, deadline - time.monotonic()))
                counts.attempts += attempts
                counts.peak_established += peak
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()


def _broker_files(address: str) -> int:
    import psutil

    port = int(address.rsplit(":", 1)[1])
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
            return int(psutil.Process(conn.pid).num_fds())
    return 0


def _ingest_sink(settings: Any) -> Any:
    """A running ingest's sink, on topics of its own (made before the flood: it is running when the flood begins)."""
    from adapters.bus import resolve_bootstrap
    from bench.ingest import fresh_topics
    from streams.ingest.adapters.kafka import KafkaSink
    from tickwave.clock import SystemClock
    from tickwave.topics import TICKS, TICKS_DLQ, topic_name

    fresh = fresh_topics(settings)
    return KafkaSink(
        resolve_bootstrap(fresh), topic_name(fresh, TICKS), topic_name(fresh, TICKS_DLQ), "bench", SystemClock()
    )


def _ingest_ticks_per_s(sink: Any, ticks: Any) -> float:
    from streams.ingest.batches import SourceBatch

    started = time.perf_counter()
    sink.send(SourceBatch(ticks))
    remaining = sink.flush(120)
    elapsed = time.perf_counter() - started
    assert remaining == 0 and sink.delivery_failures == 0, f"{remaining} ticks not acknowledged"
    return len(ticks) / elapsed


def _decision_ms(bus: Any, first: int, count: int) -> list[float]:
    from tests.integration.execution.conftest import make_signal, now_ms
    from tickwave.contracts import OrderDenied, OrderSubmitted

    took = []
    for index in range(first, first + count):
        signal = make_signal(index, now_ms(), ("long", "short")[index % 2], 0.5)
        started = time.perf_counter()
        bus.send(signal)
        bus.wait_for(
            lambda events, wanted=signal.signal_id: any(
                isinstance(e, OrderSubmitted | OrderDenied) and e.signal_id == wanted for e in events
            ),
            30,
            f"the decision on {signal.signal_id}",
        )
        took.append((time.perf_counter() - started) * 1000)
    return took


def main() -> None:
    """Measure the ingest writer and the execution process alone, then under the flood; print one table."""
    import argparse
    import os
    import statistics
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from adapters.bus import resolve_bootstrap
    from adapters.signing import channel_key
    from bench.embedded import bench_settings, embedded_bus, prepare_topics
    from bench.ingest import simulate
    from bench.summary import record
    from tests.integration.execution.conftest import Bus
    from tickwave.config import to_environment

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--ticks", type=int, default=200_000)
    parser.add_argument("--signals", type=int, default=100)
    parser.add_argument("--settle-s", type=float, default=20.0, help="flood time before measuring under it")
    arguments = parser.parse_args()
    ticks = simulate(arguments.ticks)
    rows: list[tuple[str, ...]] = []
    with embedded_bus() as bus_settings, tempfile.TemporaryDirectory(prefix="tw-flood-") as scratch:
        address = resolve_bootstrap(bus_settings).bootstrap
        settings = bench_settings(bus_settings, Path(scratch), "flood.", market={"hours": "always"})
        prepare_topics(settings)
        log = (Path(scratch) / "execution.log").open("ab")
        execution = subprocess.Popen(
            [sys.executable, "-m", "execution"],
            env={**os.environ, **to_environment(settings)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        bus = Bus(settings, channel_key(settings.state_path, "signals"))
        try:
            _decision_ms(bus, 0, 3)  # the process is up and deciding
            sink = _ingest_sink(settings)
            _ingest_ticks_per_s(sink, ticks.take(slice(0, 1000)))  # connected
            phases: list[tuple[str, contextlib.AbstractContextManager[FloodCounts]]] = [
                ("alone", contextlib.nullcontext(FloodCounts())),
                (f"{arguments.connections:,} idle connections", flood(address, arguments.connections)),
            ]
            index = 10
            for name, pressure in phases:
                with pressure:
                    if name != "alone":
                        time.sleep(arguments.settle_s)
                    rate = _ingest_ticks_per_s(sink, ticks)
                    took = sorted(_decision_ms(bus, index, arguments.signals))
                    index += arguments.signals
                    files = _broker_files(address)
                p50, p99 = statistics.median(took), took[min(len(took) - 1, int(0.99 * len(took)))]
                alive = execution.poll() is None
                rows.append((name, f"{rate:,.0f}", f"{p50:.1f}", f"{p99:.1f}", str(files), "yes" if alive else "NO"))
        finally:
            bus.close()
            execution.terminate()
            execution.wait(30)
            log.close()
    (_name, alone_rate, alone_p50, alone_p99, *_rest), (_flooded, rate_under, p50_under, p99_under, *_more) = rows
    record(
        f"ingest writer under {arguments.connections:,} idle broker connections",
        float(rate_under.replace(",", "")),
        "ticks/s",
        baseline=f"alone {alone_rate} ticks/s",
    )
    record(
        f"execution decision p99 under {arguments.connections:,} idle broker connections",
        float(p99_under),
        "ms",
        baseline=f"alone p99 {alone_p99} ms, p50 {alone_p50} ms; under the flood p50 {p50_under} ms",
    )
    table = Table(title="Broker flood: the ingest writer and the execution process, alone and under the flood")
    for column in ("phase", "ingest ticks/s", "decision p50 ms", "decision p99 ms", "broker files", "execution up"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
