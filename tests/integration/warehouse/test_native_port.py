"""The native TCP port against a real warehouse of this module's own: clickhouse-driver as both users, and attacks.

What a local process can do there without a password: connect and send nothing, send a
Hello a byte at a time, declare a string of a gigabyte, guess passwords, hold connections
open past the budget; and, with the analyst's password, what it can do over HTTP (and no
more): read, be refused writes, host files and settings, send blocks past its bound. The
module's warehouse has a small connection budget, a short receive timeout, and a short
lock-out window, so each effect shows in seconds.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import urllib3
from clickhouse_driver.errors import ServerException

from adapters.endpoints import free_port
from adapters.warehouse.credentials import resolve_credentials
from dashboards.gocheck import CHECKER_DIR
from tests.integration.warehouse.http import post
from tests.integration.warehouse.native import Warehouse
from tests.plugins.warehouse import start_warehouse
from tests.sockets import is_closed_by_server, is_closed_now, open_idle
from warehouse_server.compression import compress_block

MAX_CONNECTIONS = 48
MAX_SESSIONS = 2  # HTTP sessions per user: a native connection's session is not counted there
RECEIVE_TIMEOUT_S = 1.5
SEND_TIMEOUT_S = 2.0
ANALYST_SLOTS = 4
ANALYST_MAX_EXECUTION_S = 120
TOO_MANY_SIMULTANEOUS_QUERIES = 202
MAX_FAILED_LOGINS = 3
LOGIN_WINDOW_S = 4.0
AUTHENTICATION_FAILED = 516
READONLY = 164
QUERY_IS_TOO_LARGE = 229
SERVER_EXCEPTION = 2
SERVER_HELLO = 0
CHECKSUM_DOESNT_MATCH = 40
DATABASE_ACCESS_DENIED = 291
UNKNOWN_TABLE = 60
EMPTY_BLOCK = b"\x01\x00\x02\xff\xff\xff\xff\x00" + b"\x00\x00"  # block info, no columns, no rows


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    state_dir = tmp_path_factory.mktemp("native")
    native_port = free_port()
    supervisor, service, endpoint = start_warehouse(
        state_dir,
        native_port=native_port,
        max_connections=MAX_CONNECTIONS,
        max_sessions=MAX_SESSIONS,
        max_connections_per_client=MAX_CONNECTIONS // 2,
        http_receive_timeout_s=RECEIVE_TIMEOUT_S,
        http_send_timeout_s=SEND_TIMEOUT_S,
        analyst_max_concurrent_queries=ANALYST_SLOTS,
        analyst_max_execution_time_s=ANALYST_MAX_EXECUTION_S,
        max_failed_logins=MAX_FAILED_LOGINS,
        failed_login_window_s=LOGIN_WINDOW_S,
        failed_login_delay_s=0.2,
    )
    try:
        yield Warehouse(endpoint, native_port, resolve_credentials(service.settings))
    finally:
        supervisor.stop(service)


@pytest.fixture(scope="module")
def table(warehouse: Warehouse) -> str:
    database = f"n_{uuid.uuid4().hex[:8]}"
    service = warehouse.client()
    service.execute(f"CREATE DATABASE {database}")
    service.execute(
        f"CREATE TABLE {database}.trades (id UInt64, symbol LowCardinality(String), price Decimal(18, 5), "
        f"at DateTime64(3, 'UTC'), tags Array(String), note Nullable(String)) ENGINE = MergeTree ORDER BY id"
    )
    service.disconnect()
    return f"{database}.trades"


AT = datetime.datetime(2026, 1, 5, 9, 30, 0, 125000, tzinfo=datetime.UTC)
ROWS = [
    (1, "EURUSD", Decimal("1.08125"), AT, ["a", "b"], None),
    (2, "USDJPY", Decimal("151.20000"), AT + datetime.timedelta(seconds=1), [], "late fill"),
]


def hello(user: str, password: str, revision: int = 54460) -> bytes:
    def string(text: str) -> bytes:
        return varuint(len(text.encode())) + text.encode()

    return b"\x00" + string("probe") + b"\x01\x01" + varuint(revision) + string("") + string(user) + string(password)


def varuint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def exception_code(answer: bytes) -> int | None:
    """The code of an Exception packet at the start of ``answer`` (None for another packet)."""
    if not answer or answer[0] != SERVER_EXCEPTION:
        return None
    return int(struct.unpack("<i", answer[1:5])[0])


def answer_to(warehouse: Warehouse, data: bytes, timeout_s: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", warehouse.native_port), timeout=timeout_s) as sock:
        sock.sendall(data)
        return sock.recv(65536)


def test_native_when_the_service_user_round_trips_then_rows_types_and_parameters_come_back(
    warehouse: Warehouse, table: str
) -> None:
    client = warehouse.client()

    inserted = client.execute(f"INSERT INTO {table} (id, symbol, price, at, tags, note) VALUES", ROWS)
    rows, columns = client.execute(
        f"SELECT * FROM {table} WHERE id >= {{low:UInt64}} ORDER BY id", {"low": 1}, with_column_types=True
    )
    settings_answer = client.execute("SELECT getSetting('max_block_size')", settings={"max_block_size": 1234})

    assert inserted == 2
    assert rows == ROWS
    assert [name for name, _ in columns] == ["id", "symbol", "price", "at", "tags", "note"]
    assert columns[3][1] == "DateTime64(3, 'UTC')"
    assert settings_answer == [(1234,)]
    assert client.execute("SELECT {text:String}", {"text": 'it\'s\\a "quote"'}) == [('it\'s\\a "quote"',)]


def test_native_when_compressed_with_lz4_then_clickhouse_driver_round_trips_both_ways(
    warehouse: Warehouse, table: str
) -> None:
    client = warehouse.client(compression="lz4")
    rows = [(1000 + index, "GBPUSD", Decimal("1.25000"), AT, ["x"] * (index % 5), None) for index in range(20_000)]

    inserted = client.execute(f"INSERT INTO {table} (id, symbol, price, at, tags, note) VALUES", rows)
    read = client.execute(f"SELECT * FROM {table} WHERE id >= 1000 ORDER BY id")
    streamed = sum(1 for _ in client.execute_iter("SELECT number, toString(number) FROM numbers(2000000)"))

    assert inserted == len(rows)
    assert read == rows
    assert streamed == 2_000_000


def test_native_when_the_service_user_drops_the_engines_database_then_refused_and_queries_still_run(
    warehouse: Warehouse,
) -> None:
    client = warehouse.client()
    try:
        with pytest.raises(ServerException) as refused:
            client.execute('DROP DATABASE IF EXISTS "default"')
        after = client.execute("SELECT 1")
    finally:
        client.disconnect()
    another = warehouse.client()
    try:
        fresh = another.execute("SELECT 2")
    finally:
        another.disconnect()

    assert refused.value.code == DATABASE_ACCESS_DENIED
    assert (after, fresh) == ([(1,)], [(2,)])


def test_native_when_a_result_is_empty_then_its_columns_still_come_back(warehouse: Warehouse) -> None:
    client = warehouse.client()
    try:
        rows, columns = client.execute(
            "SELECT number, toString(number) AS text FROM numbers(10) WHERE number > 100", with_column_types=True
        )
    finally:
        client.disconnect()

    assert rows == []
    assert columns == [("number", "UInt64"), ("text", "String")]


def test_native_when_the_service_user_inserts_into_a_table_function_then_its_blocks_are_taken(
    warehouse: Warehouse,
) -> None:
    client = warehouse.client()
    try:
        written = client.execute(
            "INSERT INTO FUNCTION null('x UInt64, note String') (note, x) VALUES", [("a", 1), ("b", 2)]
        )
    finally:
        client.disconnect()

    assert written == 2


def test_native_when_the_service_user_makes_a_temporary_table_then_its_connection_alone_keeps_it(
    warehouse: Warehouse,
) -> None:
    client, other, analyst = warehouse.client(), warehouse.client(), warehouse.client(analyst=True)
    try:
        client.execute("CREATE TEMPORARY TABLE scratch (pair Tuple(id Int64, code Int64), note String)")
        client.execute("INSERT INTO scratch VALUES", [((1, 2), "kept")])
        kept = client.execute("SELECT pair, note FROM scratch")
        with pytest.raises(ServerException) as elsewhere:
            other.execute("SELECT * FROM scratch")
        with pytest.raises(ServerException) as by_the_analyst:
            analyst.execute("SELECT * FROM scratch")
        client.disconnect()
        after_reconnect = client.execute("EXISTS TEMPORARY TABLE scratch")
    finally:
        client.disconnect()
        other.disconnect()
        analyst.disconnect()

    assert kept == [((1, 2), "kept")]
    assert elsewhere.value.code == UNKNOWN_TABLE
    assert "kept" not in by_the_analyst.value.message
    assert by_the_analyst.value.code in (UNKNOWN_TABLE, READONLY)
    assert after_reconnect == [(0,)]


def test_native_when_the_service_user_sets_and_uses_then_its_next_queries_keep_them(
    warehouse: Warehouse, table: str
) -> None:
    database = table.split(".")[0]
    client, other = warehouse.client(), warehouse.client()
    try:
        client.execute("SET output_format_native_write_json_as_string = 1, max_threads = 3")
        client.execute(f"USE {database}")
        kept = client.execute(
            "SELECT getSetting('output_format_native_write_json_as_string'), getSetting('max_threads'), "
            "currentDatabase()"
        )
        per_query = client.execute("SELECT getSetting('max_threads')", settings={"max_threads": 2})
        after_per_query = client.execute("SELECT getSetting('max_threads')")
        elsewhere = other.execute("SELECT getSetting('output_format_native_write_json_as_string'), currentDatabase()")
    finally:
        client.disconnect()
        other.disconnect()

    assert kept == [(True, 3, database)]
    assert (per_query, after_per_query) == ([(2,)], [(3,)])
    assert elsewhere[0][0] is False
    assert elsewhere[0][1] != database


def test_native_when_writer_connections_outnumber_the_session_cap_then_each_keeps_its_own_table(
    warehouse: Warehouse,
) -> None:
    # A pool of writer connections is bounded by the connection budget, not by HTTP's max_sessions.
    clients = [warehouse.client() for _ in range(MAX_SESSIONS * 4)]
    try:
        for number, client in enumerate(clients):
            client.execute("CREATE TEMPORARY TABLE mine (n UInt64)")
            client.execute("INSERT INTO mine VALUES", [(number,)])
        seen = [client.execute("SELECT n FROM mine") for client in clients]
    finally:
        for client in clients:
            client.disconnect()

    assert seen == [[(number,)] for number in range(len(clients))]


def test_native_when_the_analyst_sets_or_makes_a_temporary_table_then_refused_and_its_limits_hold(
    warehouse: Warehouse,
) -> None:
    analyst = warehouse.client(analyst=True)
    try:
        with pytest.raises(ServerException) as loosened:
            analyst.execute(f"SET max_execution_time = {ANALYST_MAX_EXECUTION_S * 10}")
        with pytest.raises(ServerException) as scratch:
            analyst.execute("CREATE TEMPORARY TABLE scratch (n UInt64)")
        limit = analyst.execute("SELECT getSetting('max_execution_time')")
    finally:
        analyst.disconnect()

    assert (loosened.value.code, scratch.value.code) == (READONLY, READONLY)
    assert limit == [(ANALYST_MAX_EXECUTION_S,)]


NAMED_TUPLE = "Tuple(id Int64, code Int64)"


def test_native_when_a_column_is_a_named_tuple_then_headers_name_it_on_one_line(warehouse: Warehouse) -> None:
    # clickhouse-go compares and parses the one-line name ClickHouse sends; DESCRIBE prints it over lines.
    table = f"default.tuples_{uuid.uuid4().hex[:8]}"
    client = warehouse.client()
    try:
        client.execute(f"CREATE TABLE {table} (pair {NAMED_TUPLE}) ENGINE = Memory")
        _, empty_result = client.execute(f"SELECT pair FROM {table} WHERE 0", with_column_types=True)
        client.connection.send_query(f"INSERT INTO {table} VALUES")
        client.connection.send_external_tables(None)
        insert_header = client.receive_sample_block()
        client.send_data(insert_header, [((1, 2),)])
        client.receive_end_of_insert_query()
        stored = client.execute(f"SELECT pair FROM {table}")
        client.execute(f"DROP TABLE {table}")
    finally:
        client.disconnect()

    assert empty_result == [("pair", NAMED_TUPLE)]
    assert insert_header.columns_with_types == [("pair", NAMED_TUPLE)]
    assert stored == [((1, 2),)]


def compressed_query(sql: str) -> bytes:
    """A Query packet at revision 54460 (no client info), asking for compression, with no settings or parameters."""

    def string(text: str) -> bytes:
        return varuint(len(text.encode())) + text.encode()

    return b"\x01" + string("") + b"\x00" + string("") + string("") + b"\x02\x01" + string(sql) + string("")


def exception_codes(answer: bytes) -> set[int]:
    """The codes of every Exception packet ``answer`` may hold (any byte 2 followed by four more)."""
    return {
        struct.unpack("<i", answer[index + 1 : index + 5])[0]
        for index in range(len(answer) - 4)
        if answer[index] == SERVER_EXCEPTION
    }


def answers_after_hello(
    warehouse: Warehouse, user: str, password: str, packets: bytes, until: frozenset[int] = frozenset()
) -> bytes:
    """Shake hands as ``user``, send ``packets``, return what the server sends until it closes or goes quiet.

    Reading ends too at an exception with one of the codes ``until``: a server that refuses a query
    keeps the connection open until its receive timeout, which is no part of the refusal's time.
    """
    with socket.create_connection(("127.0.0.1", warehouse.native_port), timeout=5) as sock:
        sock.sendall(hello(user, password) + varuint(0))  # Hello, then the addendum's empty quota key
        sock.sendall(packets)
        received = b""
        try:
            while not exception_codes(received) & until and (chunk := sock.recv(65536)):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


@pytest.mark.parametrize("analyst", [False, True], ids=["service", "analyst"])
def test_native_when_a_compressed_block_has_a_bad_checksum_then_refused_with_checksum_doesnt_match(
    warehouse: Warehouse, analyst: bool
) -> None:
    credentials = warehouse.credentials
    user = credentials.analyst_user if analyst else credentials.user
    password = (credentials.analyst_password if analyst else credentials.password).get_secret_value()
    frame = bytearray(compress_block(EMPTY_BLOCK, "lz4"))
    frame[0] ^= 0xFF

    answer = answers_after_hello(
        warehouse,
        user,
        password,
        compressed_query("SELECT 1") + b"\x02" + varuint(0) + bytes(frame),
        until=frozenset({CHECKSUM_DOESNT_MATCH}),
    )

    assert CHECKSUM_DOESNT_MATCH in exception_codes(answer)


INCORRECT_DATA = 117
DYNAMIC_HEADER = b"\x01\x01\x01d\x07Dynamic\x00"  # one column, one row, no custom serialization


@pytest.mark.parametrize(
    "column",
    [
        b"\x03" + bytes(7) + b"\x01\x05UInt8\x07\x01",  # flattened: type index 7 of 1 type
        (b"\x03" + bytes(7) + b"\x01\x07Dynamic") * 10_000,  # a Dynamic in a Dynamic, 10 000 deep
        # 1048 type names of 4000 characters, then the size of one more: past 4 MiB before its bytes are
        # needed (all of it sent, so the refusal is not lost to a reset while the client still writes)
        b"\x03" + bytes(7) + varuint(2_000) + (varuint(4000) + b"x" * 4000) * 1_048 + varuint(4000),
    ],
    ids=["index", "nesting", "names"],
)
def test_native_when_the_service_user_inserts_a_malformed_dynamic_block_then_refused_as_incorrect_data(
    warehouse: Warehouse, column: bytes
) -> None:
    credentials = warehouse.credentials
    query = compressed_query("INSERT INTO FUNCTION null('d Dynamic') VALUES").replace(b"\x02\x01", b"\x02\x00", 1)
    block = b"\x02" + varuint(0) + b"\x01\x00\x02\xff\xff\xff\xff\x00" + DYNAMIC_HEADER + column

    started = time.monotonic()
    answer = answers_after_hello(
        warehouse,
        credentials.user,
        credentials.password.get_secret_value(),
        query + b"\x02" + varuint(0) + EMPTY_BLOCK + block,
        until=frozenset({INCORRECT_DATA}),
    )

    assert INCORRECT_DATA in exception_codes(answer)
    assert time.monotonic() - started < 10
    assert warehouse.client().execute("SELECT 6") == [(6,)]


TOO_LARGE = frozenset({QUERY_IS_TOO_LARGE, 246})  # the analyst's 1 MiB bound, or TOO_LARGE_SIZE_COMPRESSED


def test_native_when_the_analyst_declares_a_gigabyte_frame_then_refused_before_reading_it(warehouse: Warehouse) -> None:
    credentials = warehouse.credentials
    header = struct.pack("<BII", 0x82, (1 << 30) - 1, (1 << 30) - 1)
    started = time.monotonic()

    answer = answers_after_hello(
        warehouse,
        credentials.analyst_user,
        credentials.analyst_password.get_secret_value(),
        compressed_query("SELECT 1") + b"\x02" + varuint(0) + b"\x00" * 16 + header + b"x" * 1000,
        until=TOO_LARGE,
    )

    assert exception_codes(answer) & TOO_LARGE
    assert time.monotonic() - started < 5


def test_native_when_a_result_fails_midway_then_the_rows_before_arrive_and_the_connection_goes_on(
    warehouse: Warehouse,
) -> None:
    client = warehouse.client()
    seen = 0

    with pytest.raises(ServerException) as raised:
        for _ in client.execute_iter(
            "SELECT throwIf(number = 250000, 'midway') FROM numbers(300000)", settings={"max_block_size": 1000}
        ):
            seen += 1

    assert "midway" in raised.value.message
    assert 0 < seen <= 250000
    assert client.execute("SELECT 7") == [(7,)]


def test_native_when_the_client_cancels_a_streaming_result_then_it_ends_and_the_connection_answers_ping(
    warehouse: Warehouse,
) -> None:
    client = warehouse.client()
    client.connection.force_connect()
    connection = client.connection
    connection.send_query("SELECT number FROM numbers(100000000)")
    connection.send_external_tables(None)
    first = connection.receive_packet()
    connection.send_cancel()
    packets = [first]
    while packets[-1].type != 5:  # EndOfStream
        packets.append(connection.receive_packet())

    rows = sum(len(packet.block.get_rows()) for packet in packets if packet.type == 1 and packet.block)
    assert rows < 100_000_000
    assert connection.ping()
    assert client.execute("SELECT 8") == [(8,)]


def test_native_when_the_analyst_reads_then_it_gets_rows_and_is_refused_what_http_refuses(
    warehouse: Warehouse, table: str
) -> None:
    analyst = warehouse.client(analyst=True)
    refused = {
        f"INSERT INTO {table} (id) VALUES (9)": READONLY,
        "SELECT * FROM file('/etc/passwd', 'LineAsString')": None,
        "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')": None,
        "CREATE TABLE stolen (a UInt8) ENGINE = Memory": None,
        "SELECT 1 SETTINGS readonly = 0": None,
    }

    count = analyst.execute(f"SELECT count() FROM {table}")
    codes = {}
    for sql, expected in refused.items():
        with pytest.raises(ServerException) as raised:
            analyst.execute(sql)
        over_http = post(warehouse.endpoint.address, warehouse.credentials, sql.encode(), analyst=True)
        codes[sql] = (raised.value.code, int(over_http.code or 0))
        if expected is not None:
            assert raised.value.code == expected
    with pytest.raises(ServerException) as inserting:
        analyst.execute(f"INSERT INTO {table} (id) VALUES", [(10,)])

    assert count[0][0] >= 0
    assert all(native == http and native for native, http in codes.values()), codes
    assert inserting.value.code == READONLY
    assert analyst.execute("SELECT currentUser()") == [(warehouse.credentials.analyst_user,)]


@pytest.mark.parametrize("analyst", [False, True], ids=["service", "analyst"])
def test_native_when_clickhouse_driver_reads_json_then_its_paths_and_the_column_after_come_back(
    warehouse: Warehouse, analyst: bool
) -> None:
    client = warehouse.client(analyst=analyst)
    try:
        rows = client.execute(
            'SELECT (\'{"a":\' || toString(number) || \',"b":{"c":"x"}}\')::JSON AS j,'
            " toDateTime(number, 'UTC') AS t FROM numbers(3)"
        )
    finally:
        client.disconnect()

    assert [(row[0]["a"], row[0]["b"]["c"], row[1].timestamp()) for row in rows] == [
        (index, "x", index) for index in range(3)
    ]


def test_native_when_the_analyst_sends_a_block_past_its_bound_then_refused_and_closed(warehouse: Warehouse) -> None:
    analyst = warehouse.client(analyst=True)
    big = [(str(index) * 200,) for index in range(10_000)]  # ~2 MiB, the read-only bound is 1 MiB

    with pytest.raises((ServerException, ConnectionError)) as raised:
        analyst.execute(
            "SELECT count() FROM big", external_tables=[{"name": "big", "structure": [("s", "String")], "data": big}]
        )

    # The refusal is written and the connection closed at once: a client still sending sees the reset.
    assert not isinstance(raised.value, ServerException) or raised.value.code == QUERY_IS_TOO_LARGE
    assert warehouse.client(analyst=True).execute("SELECT 5") == [(5,)]


MOVIES = {"name": "movies", "structure": [("movie", "String"), ("year", "UInt16")], "data": [("Alien", 1979)]}
ACTORS = {"name": "actors", "structure": [("actor", "String"), ("year", "UInt16")], "data": [("Weaver", 1979)]}


@pytest.mark.parametrize("compression", [False, "lz4"])
def test_native_when_the_service_user_sends_external_tables_then_its_query_alone_reads_them(
    warehouse: Warehouse, compression: bool | str
) -> None:
    client = warehouse.client(compression=compression)
    try:
        client.execute("CREATE TEMPORARY TABLE mine (n UInt64)")  # the connection holds a session: tables are dropped
        joined = client.execute(
            "SELECT movie, actor FROM movies JOIN actors USING (year)", external_tables=[MOVIES, ACTORS]
        )
        kept = client.execute("EXISTS TEMPORARY TABLE mine")
        with pytest.raises(ServerException) as gone:  # clickhouse-driver disconnects after an error
            client.execute("SELECT * FROM movies")
    finally:
        client.disconnect()

    assert joined == [("Alien", "Weaver")]
    assert gone.value.code == UNKNOWN_TABLE
    assert kept == [(1,)]


def test_native_when_the_analyst_sends_external_tables_then_refused_as_over_http(warehouse: Warehouse) -> None:
    analyst = warehouse.client(analyst=True)
    body, content_type = urllib3.encode_multipart_formdata(
        {"query": "SELECT count() FROM movies", "movies": ("movies.tsv", b"Alien\t1979\n", "text/plain")}
    )
    try:
        with pytest.raises(ServerException) as refused:
            analyst.execute("SELECT count() FROM movies", external_tables=[MOVIES])
        after = analyst.execute("SELECT 5")
    finally:
        analyst.disconnect()
    over_http = post(
        warehouse.endpoint.address,
        warehouse.credentials,
        body,
        analyst=True,
        headers={"Content-Type": content_type},
        movies_structure="movie String, year UInt16",
    )

    assert (refused.value.code, after) == (READONLY, [(5,)])
    assert over_http.code == str(READONLY)


def test_native_when_the_service_user_reads_host_files_then_confined_as_over_http(warehouse: Warehouse) -> None:
    service = warehouse.client()
    probes = [
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        f"SELECT 1 INTO OUTFILE '/tmp/native-{uuid.uuid4().hex[:8]}.txt'",
    ]
    codes = []
    for sql in probes:
        with pytest.raises(ServerException) as raised:
            service.execute(sql)
        over_http = post(warehouse.endpoint.address, warehouse.credentials, sql.encode())
        codes.append((raised.value.code, int(over_http.code or 0)))

    assert all(native == http and native for native, http in codes), codes


def test_native_when_no_credentials_or_a_wrong_password_then_authentication_fails(warehouse: Warehouse) -> None:
    anonymous = answer_to(warehouse, hello("", ""))
    wrong = answer_to(warehouse, hello("nobody-" + uuid.uuid4().hex[:6], "guess"))

    assert exception_code(anonymous) == AUTHENTICATION_FAILED
    assert exception_code(wrong) == AUTHENTICATION_FAILED


def test_native_when_a_connection_sends_nothing_then_closed_after_the_receive_timeout(warehouse: Warehouse) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", warehouse.native_port)) as sock:
        assert is_closed_by_server(sock, within_s=RECEIVE_TIMEOUT_S * 4)
    assert time.monotonic() - started >= RECEIVE_TIMEOUT_S * 0.9


def test_native_when_a_hello_trickles_a_byte_at_a_time_then_cut_within_the_receive_timeout(
    warehouse: Warehouse,
) -> None:
    data = hello(warehouse.credentials.user, "x" * 200)
    started = time.monotonic()
    sent = 0
    with socket.create_connection(("127.0.0.1", warehouse.native_port)) as sock:
        try:
            for byte in data:
                sock.send(bytes([byte]))
                sent += 1
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass
        is_closed = is_closed_by_server(sock, within_s=RECEIVE_TIMEOUT_S * 4)

    assert is_closed
    assert sent < len(data)
    assert time.monotonic() - started < RECEIVE_TIMEOUT_S * 4


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_native_when_an_http_client_reaches_it_then_told_the_http_port_and_closed(
    warehouse: Warehouse, method: str
) -> None:
    http_port = warehouse.endpoint.address.rsplit(":", 1)[1]
    request = f"{method} /?query=SELECT%201 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n\r\n".encode()

    with socket.create_connection(("127.0.0.1", warehouse.native_port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk

    assert answer.startswith(b"HTTP/1.0 400 Bad Request\r\n\r\n")
    assert f"Port {warehouse.native_port} is for clickhouse-client program".encode() in answer
    assert f"You must use port {http_port} for HTTP.".encode() in answer


def test_native_when_a_hello_declares_a_gigabyte_string_then_refused_at_once(warehouse: Warehouse) -> None:
    data = b"\x00" + varuint(1 << 30) + b"x" * 1000
    started = time.monotonic()

    answer = answer_to(warehouse, data)

    assert exception_code(answer) == QUERY_IS_TOO_LARGE
    assert time.monotonic() - started < RECEIVE_TIMEOUT_S


def test_native_when_idle_connections_fill_the_budget_then_the_service_user_gets_in(warehouse: Warehouse) -> None:
    started = time.monotonic()
    idle = open_idle(warehouse.native_port, MAX_CONNECTIONS + 8)
    try:
        time.sleep(0.3)
        closed_to_make_room = sum(is_closed_now(sock) for sock in idle)
        opened_in_s = time.monotonic() - started
        answers = [warehouse.client().execute("SELECT 1") for _ in range(5)]
    finally:
        for sock in idle:
            sock.close()

    assert opened_in_s < RECEIVE_TIMEOUT_S  # what was closed so far was closed for the budget, not the timeout
    assert closed_to_make_room >= 8
    assert answers == [[(1,)]] * 5


def test_native_when_one_address_passes_its_share_then_the_service_user_from_it_still_gets_in(
    warehouse: Warehouse,
) -> None:
    idle = open_idle(warehouse.native_port, MAX_CONNECTIONS // 2 + 4, address="127.0.0.1")
    try:
        answer = warehouse.client().execute("SELECT 2")
    finally:
        for sock in idle:
            sock.close()

    assert answer == [(2,)]


def test_native_when_analyst_connections_fill_the_budget_then_the_service_user_gets_in(
    warehouse: Warehouse,
) -> None:
    analysts = []
    try:
        for _ in range(MAX_CONNECTIONS):
            analyst = warehouse.client(analyst=True)
            try:
                analyst.execute("SELECT 1")
            except (ServerException, OSError, EOFError):
                break
            analysts.append(analyst)
        answer = warehouse.client().execute("SELECT 3")
    finally:
        for analyst in analysts:
            analyst.disconnect()

    assert answer == [(3,)]


def test_native_when_the_analyst_never_reads_its_results_then_cut_after_the_send_timeout_and_its_slots_come_back(
    warehouse: Warehouse,
) -> None:
    holders = [warehouse.client(analyst=True) for _ in range(ANALYST_SLOTS)]
    for holder in holders:
        holder.connection.force_connect()
        holder.connection.send_query("SELECT number, toString(number) FROM numbers(1000000000)")
        holder.connection.send_external_tables(None)
    time.sleep(1.0)
    try:
        with pytest.raises(ServerException) as busy:
            warehouse.client(analyst=True).execute("SELECT 1")
        # The kernel's loopback buffers take ~10 MB per connection before a send stalls: then the send timeout.
        waited_s = wait_for_analyst(warehouse, within_s=ANALYST_MAX_EXECUTION_S / 2)
        service = warehouse.client().execute("SELECT 2")
    finally:
        for holder in holders:
            holder.disconnect()

    assert busy.value.code == TOO_MANY_SIMULTANEOUS_QUERIES
    assert waited_s < ANALYST_MAX_EXECUTION_S / 2  # cut by the send timeout, not ended by the execution limit
    assert service == [(2,)]


def wait_for_analyst(warehouse: Warehouse, within_s: float) -> float:
    """Return how long the analyst waited for a query slot (``within_s`` when it never got one)."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        try:
            warehouse.client(analyst=True).execute("SELECT 1")
            return time.monotonic() - started
        except ServerException:
            time.sleep(1.0)
    return within_s


def test_native_when_the_analysts_password_is_guessed_then_locked_out_over_both_interfaces(
    warehouse: Warehouse,
) -> None:
    user = warehouse.credentials.analyst_user
    right = warehouse.credentials.analyst_password.get_secret_value()
    guesses = [exception_code(answer_to(warehouse, hello(user, f"guess-{i}"))) for i in range(MAX_FAILED_LOGINS)]

    with_right_password = answer_to(warehouse, hello(user, right))
    over_http = post(warehouse.endpoint.address, warehouse.credentials, b"SELECT 1", analyst=True)
    time.sleep(LOGIN_WINDOW_S)  # the window passes: the analyst logs in again (other tests need it)
    afterwards = warehouse.client(analyst=True).execute("SELECT 4")

    assert guesses == [AUTHENTICATION_FAILED] * MAX_FAILED_LOGINS
    assert exception_code(with_right_password) == AUTHENTICATION_FAILED
    assert over_http.status == 403 and b"too many failed login attempts" in over_http.body
    assert afterwards == [(4,)]


@pytest.fixture(scope="module")
def go_native(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clickhouse-go's native round trip (dashboards/checker/native), built from the checker's pinned modules."""
    go = shutil.which("go")
    assert go is not None, "Go is a prerequisite (make prereqs)"
    binary = tmp_path_factory.mktemp("go-native") / "native"
    subprocess.run([go, "build", "-mod=readonly", "-o", str(binary), "./native"], cwd=CHECKER_DIR, check=True)
    return binary


@pytest.mark.parametrize("compression", ["none", "lz4", "zstd"])
@pytest.mark.parametrize("analyst", [False, True], ids=["service", "analyst"])
def test_native_when_clickhouse_go_runs_its_native_round_trip_then_every_step_goes_as_for_its_user(
    warehouse: Warehouse, table: str, go_native: Path, analyst: bool, compression: str
) -> None:
    credentials = warehouse.credentials
    user = credentials.analyst_user if analyst else credentials.user
    password = (credentials.analyst_password if analyst else credentials.password).get_secret_value()
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "NATIVE_ADDR": f"127.0.0.1:{warehouse.native_port}",
        "NATIVE_USER": user,
        "NATIVE_PASSWORD": password,
        "NATIVE_DATABASE": table.split(".")[0],
        "NATIVE_WRITES": "0" if analyst else "1",
        "NATIVE_COMPRESSION": compression,
    }

    run = subprocess.run([str(go_native)], env=environment, capture_output=True, text=True, timeout=180, check=False)

    steps = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    assert run.returncode == 0, run.stderr + run.stdout
    expected = ["ping", "select", "parameters", "settings", "exception", "after exception", "variant types"]
    expected += ["insert refused"] if analyst else ["create", "insert", "read back", "variant insert"]
    assert [step["step"] for step in steps] == expected
    assert {step["step"]: step["rows"] for step in steps}["select"] == 100_000
    assert {step["step"]: step["rows"] for step in steps}["variant types"] == 3000
    assert analyst or {step["step"]: step["rows"] for step in steps}["variant insert"] == 500
