"""HTTP sessions (locking, checks, timeouts, close) and results streamed past the response buffer."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from adapters.endpoints import Endpoint
from adapters.warehouse.client import connect
from adapters.warehouse.credentials import Credentials, resolve_credentials
from tests.integration.warehouse.http import Response, post
from tickwave.config import Settings


@pytest.fixture(scope="module")
def credentials(warehouse_settings: Settings) -> Credentials:
    return resolve_credentials(warehouse_settings)


def test_session_when_a_second_request_arrives_during_the_first_then_373(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    session = str(uuid.uuid4())
    address = warehouse_endpoint.address
    replies: list[Response] = []

    def slow_query() -> None:
        # A probe may hold the session at the very moment this arrives: then retry.
        while not replies or replies[-1].code == "373":
            replies.append(post(address, credentials, b"SELECT sleep(1.5)", session_id=session))

    post(address, credentials, b"SELECT 1", session_id=session)  # the session exists before the race
    slow = threading.Thread(target=slow_query)
    slow.start()
    probe = None
    deadline = time.monotonic() + 20
    while slow.is_alive() and time.monotonic() < deadline:  # probe until the slow query holds the session
        probe = post(address, credentials, b"SELECT 1", session_id=session)
        if probe.code == "373":
            break
        time.sleep(0.01)
    slow.join()

    assert probe is not None and probe.code == "373"
    assert replies[-1].status == 200


def test_session_when_check_is_requested_for_an_unknown_session_then_372(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    response = post(
        warehouse_endpoint.address, credentials, b"SELECT 1", session_id="nope-" + uuid.uuid4().hex, session_check="1"
    )

    assert response.code == "372"


def test_session_when_closed_then_its_temporary_tables_are_gone(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    session = str(uuid.uuid4())
    address = warehouse_endpoint.address
    post(address, credentials, b"CREATE TEMPORARY TABLE kept (x UInt8)", session_id=session)
    during = post(address, credentials, b"SELECT count() FROM kept", session_id=session, close_session="1")
    after = post(address, credentials, b"SELECT count() FROM kept", session_id=session, session_check="1")

    assert during.body == b"0\n"
    assert after.code == "372"


def test_session_when_timeout_exceeds_the_maximum_then_374(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    response = post(
        warehouse_endpoint.address, credentials, b"SELECT 1", session_id=str(uuid.uuid4()), session_timeout="7200"
    )

    assert response.code == "374"


def test_session_when_idle_past_its_timeout_then_expired(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    session = str(uuid.uuid4())
    address = warehouse_endpoint.address
    post(address, credentials, b"CREATE TEMPORARY TABLE brief (x UInt8)", session_id=session, session_timeout="1")
    threading.Event().wait(2.2)
    response = post(address, credentials, b"SELECT count() FROM brief", session_id=session, session_check="1")

    assert response.code == "372"


def test_session_when_per_query_database_is_given_then_session_database_is_restored(
    warehouse_endpoint: Endpoint, credentials: Credentials, migrated_database: str
) -> None:
    session = str(uuid.uuid4())
    address = warehouse_endpoint.address
    with_database = post(
        address, credentials, b"SELECT currentDatabase()", session_id=session, database=migrated_database
    )
    without = post(address, credentials, b"SELECT currentDatabase()", session_id=session)

    assert with_database.body.decode().strip() == migrated_database
    assert without.body == b"default\n"


def test_stream_when_result_exceeds_the_buffer_then_sent_chunked_and_complete(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    response = post(warehouse_endpoint.address, credentials, b"SELECT number FROM numbers(2000000) FORMAT TSVWithNames")
    lines = response.body.split(b"\n")

    assert "content-length" not in response.headers
    assert response.headers.get("x-clickhouse-exception-tag")
    assert lines[0] == b"number" and lines.count(b"number") == 1
    assert len(lines) == 2_000_002 and lines[-2] == b"1999999"


def test_stream_when_query_fails_after_streaming_began_then_client_sees_the_error(
    warehouse_settings: Settings, warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    sql = "SELECT throwIf(number = 1500000, 'boom mid-stream') FROM numbers(3000000)"
    client = connect(warehouse_settings, database="default")
    try:
        with pytest.raises(DatabaseError) as raised:
            client.query(sql)
    finally:
        client.close()
    raw = post(warehouse_endpoint.address, credentials, sql.encode())

    assert "boom mid-stream" in str(raised.value)
    assert b"__exception__" in raw.body and b"boom mid-stream" in raw.body
