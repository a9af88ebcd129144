"""Eight clients at once: long queries run side by side and do not hold up short ones."""

from __future__ import annotations

import http.client
import statistics
import threading
import time

from clickhouse_connect.driver.client import Client

from adapters.endpoints import Endpoint
from adapters.warehouse.client import connect
from adapters.warehouse.credentials import resolve_credentials
from tickwave.config import Settings

LONG_QUERY = "SELECT sum(sipHash64(number)) FROM numbers(30000000) SETTINGS max_threads = 1"


def test_clients_when_long_and_short_queries_mix_then_short_ones_stay_fast(
    warehouse_settings: Settings, migrated_database: str
) -> None:
    clients: list[Client] = [connect(warehouse_settings, database=migrated_database) for _ in range(8)]
    alone = clients[0]
    started = time.perf_counter()
    alone.command(LONG_QUERY)
    long_alone_s = time.perf_counter() - started
    long_spans: list[tuple[float, float]] = []
    short_latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop = threading.Event()

    def run_long(client: Client) -> None:
        try:
            begun = time.perf_counter()
            client.command(LONG_QUERY)
            with lock:
                long_spans.append((begun, time.perf_counter()))
        except BaseException as exc:
            errors.append(exc)

    def run_short(client: Client) -> None:
        try:
            while not stop.is_set():
                begun = time.perf_counter()
                client.query("SELECT count() FROM ticks WHERE symbol = 'EURUSD'")
                with lock:
                    short_latencies.append(time.perf_counter() - begun)
        except BaseException as exc:
            errors.append(exc)

    long_threads = [threading.Thread(target=run_long, args=(client,)) for client in clients[:4]]
    short_threads = [threading.Thread(target=run_short, args=(client,)) for client in clients[4:]]
    try:
        for thread in long_threads + short_threads:
            thread.start()
        for thread in long_threads:
            thread.join()
        stop.set()
        for thread in short_threads:
            thread.join()
    finally:
        for client in clients:
            client.close()

    assert not errors, errors
    assert len(long_spans) == 4
    latest_start = max(start for start, _ in long_spans)
    earliest_end = min(end for _, end in long_spans)
    assert latest_start < earliest_end, "the long queries ran one after another instead of side by side"
    assert len(short_latencies) >= 40, "short queries were starved while long ones ran"
    p95 = statistics.quantiles(short_latencies, n=20)[-1]
    assert p95 < max(0.5, long_alone_s / 2), f"short p95 {p95:.3f}s vs long query alone {long_alone_s:.2f}s"


def test_keep_alive_when_sending_small_requests_then_no_nagle_stall(
    warehouse_endpoint: Endpoint, warehouse_settings: Settings
) -> None:
    credentials = resolve_credentials(warehouse_settings)
    host, _, port = warehouse_endpoint.address.rpartition(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"X-ClickHouse-User": credentials.user, "X-ClickHouse-Key": credentials.password.get_secret_value()}
    medians = []
    try:
        for _ in range(3):
            latencies = []
            for _ in range(20):
                started = time.perf_counter()
                connection.request("POST", "/", body=b"SELECT 1", headers=headers)
                response = connection.getresponse()
                assert response.read() == b"1\n"
                latencies.append(time.perf_counter() - started)
            medians.append(statistics.median(latencies))
    finally:
        connection.close()

    # Without TCP_NODELAY a keep-alive exchange waits ~40 ms on delayed ACKs every time, so in every
    # round; a busy neighbour (the other test worker) slows a round, not all three.
    assert min(medians) < 0.025, f"round medians {[round(m * 1000, 1) for m in medians]} ms"
