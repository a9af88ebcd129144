"""The guards around the read-only analyst, against the real warehouse service.

Every request lands in the access log, normalized and out of the analyst's reach; failed
logins lock a user and address out; the analyst's concurrency limit refuses the query
over it, and reads no more of a refused upload than the analyst may send; an unknown
function name costs no more than a known one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials, resolve_credentials
from tests.integration.warehouse.analyst import as_analyst, assert_refused
from tests.integration.warehouse.http import Response, post


def wait_for_rows(endpoint: Endpoint, credentials: Credentials, database: str, sql: str, count: int = 1) -> list[str]:
    """The query's rows once at least `count` of them are there (the access log is written in batches)."""
    deadline = time.monotonic() + 15
    while True:
        reply = as_analyst(endpoint, credentials, sql, database=database)
        rows = reply.body.decode().splitlines() if reply.status == 200 else []
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_access_log_when_requests_are_served_then_each_lands_normalized_and_read_only(
    warehouse_endpoint: Endpoint, credentials: Credentials, tickwave_database: str
) -> None:
    marker = uuid.uuid4().hex
    as_analyst(warehouse_endpoint, credentials, f"SELECT 'secret-{marker}' AS x, 42")
    post(warehouse_endpoint.address, credentials, b"SELECT 1", analyst=False, query_id=marker)
    refused = as_analyst(warehouse_endpoint, credentials, "SELECT file('/x')", query_id=f"{marker}-r")
    for index, failing in enumerate([f"SELECT 'secret-{marker}' AS x, nope", f"SELECT 'secret-{marker} FROM"]):
        failed = post(warehouse_endpoint.address, credentials, failing.encode(), query_id=f"{marker}-f{index}")
        assert failed.status != 200 and f"secret-{marker}".encode() in failed.body  # the client sees its own text

    rows = wait_for_rows(
        warehouse_endpoint,
        credentials,
        tickwave_database,
        "SELECT user, client_address, normalized_query, exception_code FROM query_log "
        f"WHERE query_id IN ('{marker}', '{marker}-r') ORDER BY user",
        count=2,
    )
    literal = wait_for_rows(
        warehouse_endpoint,
        credentials,
        tickwave_database,
        f"SELECT count() FROM query_log WHERE normalized_query LIKE '%{marker}%'",
    )
    change = as_analyst(
        warehouse_endpoint, credentials, "ALTER TABLE query_log DELETE WHERE 1", database=tickwave_database
    )
    failures = wait_for_rows(
        warehouse_endpoint,
        credentials,
        tickwave_database,
        f"SELECT exception_code, exception FROM query_log WHERE query_id LIKE '{marker}-f%' ORDER BY query_id",
        count=2,
    )

    assert refused.code == "164"
    assert rows == ["analyst\t127.0.0.1\tSELECT file(?)\t164", "tickwave\t127.0.0.1\tSELECT ?\t0"]
    assert literal == ["0"]  # literals are never stored
    assert [row.split("\t")[0] for row in failures] == ["47", "62"], failures
    assert not [row for row in failures if marker in row], failures  # error texts are stored masked
    assert_refused(change)


@pytest.fixture
def strict_warehouse(tmp_path: Path) -> Iterator[tuple[Endpoint, Credentials]]:
    from tests.plugins.warehouse import start_warehouse

    supervisor, service, endpoint = start_warehouse(
        tmp_path,
        max_failed_logins=3,
        failed_login_window_s=30,
        failed_login_delay_s=0.1,
        analyst_max_concurrent_queries=1,
    )
    try:
        yield endpoint, resolve_credentials(service.settings)
    finally:
        supervisor.stop(service)


def test_logins_when_failing_too_often_then_the_pair_is_locked_out_even_with_the_right_password(
    strict_warehouse: tuple[Endpoint, Credentials],
) -> None:
    endpoint, credentials = strict_warehouse
    wrong = dataclasses.replace(credentials, analyst_password=SecretStr("nope"))

    failures = [as_analyst(endpoint, wrong, "SELECT 1").body.decode() for _ in range(3)]
    locked = as_analyst(endpoint, credentials, "SELECT 1")
    service_user = post(endpoint.address, credentials, b"SELECT 1")

    assert all("password is incorrect" in body for body in failures)
    assert locked.code == "516" and b"too many failed login attempts" in locked.body
    assert service_user.status == 200  # the lock-out is per user


def test_analyst_when_over_its_concurrency_limit_then_refused_until_a_slot_frees(
    strict_warehouse: tuple[Endpoint, Credentials],
) -> None:
    endpoint, credentials = strict_warehouse
    slow: list[Response] = []
    thread = threading.Thread(target=lambda: slow.append(as_analyst(endpoint, credentials, "SELECT sleep(2)")))
    thread.start()
    time.sleep(0.8)

    second = as_analyst(endpoint, credentials, "SELECT 1")
    thread.join()
    third = as_analyst(endpoint, credentials, "SELECT 1")

    assert second.code == "202", second.body  # TOO_MANY_SIMULTANEOUS_QUERIES
    assert slow[0].status == 200 and third.status == 200


def test_analyst_when_refused_a_slot_mid_upload_then_answered_after_its_own_body_bound_not_the_servers(
    strict_warehouse: tuple[Endpoint, Credentials],
) -> None:
    endpoint, credentials = strict_warehouse
    thread = threading.Thread(target=lambda: as_analyst(endpoint, credentials, "SELECT sleep(3)"))
    thread.start()
    time.sleep(0.8)
    password = credentials.analyst_password.get_secret_value()
    head = (
        f"POST / HTTP/1.1\r\nHost: x\r\nX-ClickHouse-User: {credentials.analyst_user}\r\n"
        f"X-ClickHouse-Key: {password}\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    chunk = b"%x\r\n%s\r\n" % (1 << 16, b"-" * (1 << 16))
    host, port = endpoint.address.rsplit(":", 1)

    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):  # the server may close once it has answered
            for _ in range(48):  # 3 MiB and still sending: its own bound is 1 MiB, the server's 64 MiB
                sock.sendall(chunk)
        reply = sock.recv(4096)  # no answer before the refusal: times out (10 s) if it waits for 64 MiB
    thread.join()

    assert reply.startswith(b"HTTP/1.1 ") and b"x-clickhouse-exception-code: 202" in reply.lower(), reply[:300]


def test_analyst_when_sending_many_unknown_function_names_then_each_costs_no_more_than_a_known_query(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    marker = uuid.uuid4().hex[:8]

    def median_ms(queries: list[str]) -> float:
        times = []
        for sql in queries:
            started = time.perf_counter()
            as_analyst(warehouse_endpoint, credentials, sql)
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    known_ms = median_ms([f"SELECT lower('{marker}{index}')" for index in range(200)])
    unknown_ms = median_ms([f"SELECT unknown_{marker}_{index}(1)" for index in range(200)])

    # Reading system.functions again costs ~14 ms under a global lock; an unknown name must not cost a reread.
    assert unknown_ms < known_ms + 5, f"median of 200 unknown names {unknown_ms:.1f} ms, known {known_ms:.1f} ms"


def test_analyst_when_naming_a_query_id_the_service_user_used_then_refused_and_its_own_ids_served(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    taken, own = f"pipeline-{uuid.uuid4().hex}", f"analyst-{uuid.uuid4().hex}"
    post(warehouse_endpoint.address, credentials, b"SELECT 1", query_id=taken)
    generated = post(warehouse_endpoint.address, credentials, b"SELECT 1").headers["x-clickhouse-query-id"]

    reused = as_analyst(warehouse_endpoint, credentials, "SELECT 1", query_id=taken)
    reused_generated = as_analyst(warehouse_endpoint, credentials, "SELECT 1", query_id=generated)
    first = as_analyst(warehouse_endpoint, credentials, "SELECT 1", query_id=own)
    again = as_analyst(warehouse_endpoint, credentials, "SELECT 1", query_id=own)
    service_user_takes_it = post(warehouse_endpoint.address, credentials, b"SELECT 1", query_id=own)
    after = as_analyst(warehouse_endpoint, credentials, "SELECT 1", query_id=own)

    assert_refused(reused, code="216")  # QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING
    assert_refused(reused_generated, code="216")
    assert first.status == 200 and again.status == 200, (first.body, again.body)
    assert service_user_takes_it.status == 200  # the pipeline is never refused an id
    assert_refused(after, code="216")
