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

LONG_QUERY = "SELECT sum(sipHash64(number)) FROM numbers(60000000) SETTINGS max_threads = 1"


def test_clients_when_long_and_short_queries_mix_then_short_ones_stay_fast(
    warehouse_settings: Settings, migrated_database: str
) -> None:
    clients: list[Client] = [connect(warehouse_settings, database=migrated_database) for _ in range(8)]
    alone = clients[0]
    started = time.perf_counter()
    alone.command(LONG_QUERY)
    long_alone_s = time.perf_counter() - started
    long_spans: list[tuple[float, float]] = []
    short_spans: list[tuple[float, float]] = []
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
                    short_spans.append((begun, time.perf_counter()))
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
    # Judged against the long queries of this same moment, not a fixed time: the warehouse runs at
    # nice 10, so a busy neighbour stretches every query alike. A short query held up by the long
    # ones waits for one of them to end: none would finish while all four run, and the slowest
    # would take about a long query's time.
    together_s = earliest_end - latest_start
    inside = sum(latest_start <= start and end <= earliest_end for start, end in short_spans)
    long_s = statistics.median(end - start for start, end in long_spans)
    p95 = statistics.quantiles([end - start for start, end in short_spans], n=20)[-1]
    figures = f"{inside} short queries done in the {together_s:.2f} s all four long ones ran"
    figures += f" (a long one alone: {long_alone_s:.2f} s)"
    assert inside >= 20, figures
    assert p95 < long_s / 4, f"short p95 {p95:.3f} s vs a long query's {long_s:.2f} s; {figures}"


def test_keep_alive_when_sending_small_requests_then_no_nagle_stall(
    warehouse_endpoint: Endpoint, warehouse_settings: Settings
) -> None:
    credentials = resolve_credentials(warehouse_settings)
    host, _, port = warehouse_endpoint.address.rpartition(":")
    headers = {"X-ClickHouse-User": credentials.user, "X-ClickHouse-Key": credentials.password.get_secret_value()}

    def timed(connection: http.client.HTTPConnection) -> float:
        started = time.perf_counter()
        connection.request("POST", "/", body=b"SELECT 1", headers=headers)
        response = connection.getresponse()
        assert response.read() == b"1\n"
        return time.perf_counter() - started

    kept_alive, fresh = [], []
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        timed(connection)  # the connection's first request, which is a new connection's
        for _ in range(30):  # interleaved: a busy neighbour slows both kinds alike
            kept_alive.append(timed(connection))
            one = http.client.HTTPConnection(host, int(port), timeout=10)
            try:
                fresh.append(timed(one))
            finally:
                one.close()
    finally:
        connection.close()

    # Without TCP_NODELAY a request on a kept-alive connection waits for a delayed ACK (40 ms at least
    # on Linux) every time; on a new connection it does not (Linux ACKs at once while a connection is
    # young), so new connections, measured in the same moment, are the floor.
    kept_ms, fresh_ms = statistics.median(kept_alive) * 1000, statistics.median(fresh) * 1000
    assert kept_ms < fresh_ms + 20, f"kept-alive median {kept_ms:.1f} ms, new connections {fresh_ms:.1f} ms"
