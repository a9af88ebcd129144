"""The warehouse answers as a ClickHouse server does, where clients can tell the difference.

Each behaviour is checked through clickhouse-connect (sync; async and SQLAlchemy where the
behaviour shows there) and over raw HTTP. What still differs is listed, with the reason,
in ``warehouse_server/README.md``.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import clickhouse_connect
import pytest
import sqlalchemy
import urllib3
from clickhouse_connect.driver.asyncclient import AsyncClient
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import StreamFailureError
from clickhouse_connect.driver.external import ExternalData
from clickhouse_connect.driver.summary import QuerySummary

from adapters.endpoints import Endpoint
from adapters.warehouse.client import connect
from adapters.warehouse.credentials import Credentials
from tests.integration.warehouse.http import post
from tickwave.config import Settings

T = TypeVar("T")


@pytest.fixture
def client(warehouse_settings: Settings, fresh_database: str) -> Iterator[Client]:
    client = connect(warehouse_settings, database=fresh_database)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def analyst(warehouse_settings: Settings, fresh_database: str) -> Iterator[Client]:
    client = connect(warehouse_settings, database=fresh_database, readonly=True)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def run_async(
    warehouse_endpoint: Endpoint, credentials: Credentials, fresh_database: str
) -> Callable[[Callable[[AsyncClient], Awaitable[T]]], T]:
    """Run a coroutine against clickhouse-connect's async client on the test's database."""
    host, port = warehouse_endpoint.address.rsplit(":", 1)

    def run(work: Callable[[AsyncClient], Awaitable[T]]) -> T:
        async def main() -> T:
            client = await clickhouse_connect.get_async_client(
                host=host,
                port=int(port),
                username=credentials.user,
                password=credentials.password.get_secret_value(),
                database=fresh_database,
                autogenerate_session_id=False,
            )
            try:
                return await work(client)
            finally:
                await client.close()

        return asyncio.run(main())

    return run


@pytest.fixture
def engine(warehouse_endpoint: Endpoint, credentials: Credentials, fresh_database: str) -> Iterator[sqlalchemy.Engine]:
    """clickhouse-connect's SQLAlchemy dialect on the test's database."""
    user = urllib.parse.quote(credentials.user, safe="")
    password = urllib.parse.quote(credentials.password.get_secret_value(), safe="")
    engine = sqlalchemy.create_engine(
        f"clickhousedb://{user}:{password}@{warehouse_endpoint.address}/{fresh_database}",
        connect_args={"autogenerate_session_id": False},
        server_side_params=True,  # bound values travel as query parameters ({name:Type})
    )
    try:
        yield engine
    finally:
        engine.dispose()


def _get(address: str, credentials: Credentials, *, analyst: bool = False, **params: str) -> urllib3.BaseHTTPResponse:
    user = credentials.analyst_user if analyst else credentials.user
    password = (credentials.analyst_password if analyst else credentials.password).get_secret_value()
    query = urllib.parse.urlencode({**params, "user": user, "password": password})
    return urllib3.request("GET", f"http://{address}/?{query}", retries=False)


# Statements without a result answer with a summary, not a format ---------------------------------


def test_command_when_statement_has_no_result_then_returns_a_summary_with_the_query_id(client: Client) -> None:
    created = client.command("CREATE TABLE t (x UInt8) ENGINE = MergeTree ORDER BY x")
    inserted = client.command("INSERT INTO t SELECT number FROM numbers(3)")
    empty = client.command("SELECT x FROM t WHERE x > 10")

    assert isinstance(created, QuerySummary) and created.query_id()
    assert isinstance(inserted, QuerySummary) and inserted.written_rows == 3
    assert empty == ""  # an empty result is still a result


def test_async_command_when_statement_has_no_result_then_returns_a_summary(
    run_async: Callable[[Callable[[AsyncClient], Awaitable[Any]]], Any],
) -> None:
    async def work(client: AsyncClient) -> tuple[Any, Any]:
        created = await client.command("CREATE TABLE t (x UInt8) ENGINE = Memory")
        return created, await client.command("DROP TABLE t")

    created, dropped = run_async(work)

    assert isinstance(created, QuerySummary) and created.query_id()
    assert isinstance(dropped, QuerySummary)


def test_http_when_statement_has_no_result_then_names_no_format(
    warehouse_endpoint: Endpoint, credentials: Credentials, fresh_database: str
) -> None:
    address = warehouse_endpoint.address
    ddl = post(address, credentials, b"CREATE TABLE t (x UInt8) ENGINE = Memory", database=fresh_database)
    setting = post(address, credentials, b"SET max_threads = 1", database=fresh_database)
    query = post(address, credentials, b"SELECT x FROM t", database=fresh_database)

    assert ddl.status == setting.status == query.status == 200
    assert "x-clickhouse-format" not in ddl.headers and ddl.headers["x-clickhouse-query-id"]
    assert "x-clickhouse-format" not in setting.headers
    assert query.headers["x-clickhouse-format"] == "TabSeparated" and query.body == b""


# WITH ... INSERT is a write ------------------------------------------------------------------------


def test_with_insert_when_sent_by_each_client_then_rows_land(
    client: Client,
    run_async: Callable[[Callable[[AsyncClient], Awaitable[Any]]], Any],
    engine: sqlalchemy.Engine,
    warehouse_endpoint: Endpoint,
    credentials: Credentials,
    fresh_database: str,
) -> None:
    client.command("CREATE TABLE t (y UInt8) ENGINE = MergeTree ORDER BY y")

    summary = client.command("WITH 1 AS y INSERT INTO t SELECT y")
    run_async(lambda async_client: async_client.command("WITH 2 AS y INSERT INTO t SELECT y"))
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text("WITH 3 AS y INSERT INTO t SELECT y"))
    raw = post(warehouse_endpoint.address, credentials, b"WITH 4 AS y INSERT INTO t SELECT y", database=fresh_database)

    assert isinstance(summary, QuerySummary) and summary.written_rows == 1
    assert raw.status == 200, raw.body
    assert client.query("SELECT y FROM t ORDER BY y").result_rows == [(1,), (2,), (3,), (4,)]


def test_with_select_when_a_cte_holds_the_word_insert_then_it_stays_a_query(client: Client) -> None:
    rows = client.query("WITH x AS (SELECT 'INSERT' AS w) SELECT w FROM x").result_rows

    assert rows == [("INSERT",)]


# Query parameters reach INSERT ... VALUES ----------------------------------------------------------


def test_insert_values_when_bound_by_the_server_then_parameters_are_applied(
    client: Client,
    run_async: Callable[[Callable[[AsyncClient], Awaitable[Any]]], Any],
    engine: sqlalchemy.Engine,
    warehouse_endpoint: Endpoint,
    credentials: Credentials,
    fresh_database: str,
) -> None:
    client.command("CREATE TABLE t (s String, n UInt8) ENGINE = MergeTree ORDER BY n")
    sql = "INSERT INTO t VALUES ({s:String}, {n:UInt8})"

    client.command(sql, parameters={"s": "sync", "n": 1})
    run_async(lambda async_client: async_client.command(sql, parameters={"s": "async", "n": 2}))
    table = sqlalchemy.Table("t", sqlalchemy.MetaData(), autoload_with=engine)
    with engine.connect() as connection:
        connection.execute(sqlalchemy.insert(table).values(s="alchemy", n=3))
    raw = post(
        warehouse_endpoint.address,
        credentials,
        b"INSERT INTO t VALUES ({s:String}, {n:UInt8}), ('literal', 5)",
        database=fresh_database,
        param_s="it's raw",
        param_n="4",
    )

    assert raw.status == 200, raw.body
    assert client.query("SELECT s, n FROM t ORDER BY n").result_rows == [
        ("sync", 1),
        ("async", 2),
        ("alchemy", 3),
        ("it's raw", 4),
        ("literal", 5),
    ]


# currentUser() is the HTTP user --------------------------------------------------------------------


def test_current_user_when_asked_by_each_user_then_names_the_http_user(
    client: Client,
    analyst: Client,
    engine: sqlalchemy.Engine,
    warehouse_endpoint: Endpoint,
    credentials: Credentials,
) -> None:
    by_service = client.query("SELECT currentUser(), user() = currentUser(), 'currentUser()'")
    by_analyst = analyst.command("SELECT currentUser()")
    with engine.connect() as connection:
        by_alchemy = connection.execute(sqlalchemy.text("SELECT currentUser() AS who")).scalar()
    over_get = _get(warehouse_endpoint.address, credentials, analyst=True, query="SELECT currentUser()")

    assert by_service.result_rows == [(credentials.user, 1, "currentUser()")]
    assert by_service.column_names[0] == "currentUser()"
    assert by_analyst == credentials.analyst_user
    assert by_alchemy == credentials.user
    assert over_get.status == 200, over_get.data
    assert over_get.data == f"{credentials.analyst_user}\n".encode()


# Query text is bytes, not necessarily UTF-8 --------------------------------------------------------


def test_query_text_when_not_utf8_then_reaches_the_engine_unchanged(
    client: Client, warehouse_endpoint: Endpoint, credentials: Credentials, fresh_database: str
) -> None:
    raw = post(warehouse_endpoint.address, credentials, b"SELECT hex('\xff\xfe')", database=fresh_database)
    client.command("CREATE TABLE blobs (b String) ENGINE = MergeTree ORDER BY tuple()")
    inserted = post(
        warehouse_endpoint.address,
        credentials,
        b"INSERT INTO blobs SELECT '\x00\x9f\xc3('",
        database=fresh_database,
    )
    stored = client.command("SELECT hex(b) FROM blobs")
    # The client splices a binary parameter into the query bytes as they are.
    spliced = client.query("SELECT hex($blob$) AS h", parameters={"$blob$": b"\xa0\xa1\x00"}).result_rows

    assert raw.status == 200 and raw.body == b"FFFE\n"
    assert inserted.status == 200, inserted.body
    assert stored == "009FC328"
    assert spliced == [("A0A100",)]


# Results stream while the query runs; a late error arrives in the body -----------------------------

LATE_ERROR = "SELECT sleepEachRow(0.01), throwIf(number = 100) FROM numbers(200)"
ONE_ROW_BLOCKS = {"max_block_size": 1, "wait_end_of_query": 0}


def test_query_when_failing_after_rows_were_sent_then_client_raises_stream_failure(client: Client) -> None:
    with pytest.raises(StreamFailureError) as whole:
        _ = client.query(LATE_ERROR, settings=ONE_ROW_BLOCKS).result_set
    with pytest.raises(StreamFailureError) as streamed:
        with client.query_rows_stream(LATE_ERROR, settings=ONE_ROW_BLOCKS) as stream:
            for _ in stream:
                pass

    assert "Value passed to 'throwIf' function is non-zero" in str(whole.value)
    assert "Value passed to 'throwIf' function is non-zero" in str(streamed.value)
    assert client.command("SELECT 1") == 1  # the connection is still good


def test_async_query_when_failing_after_rows_were_sent_then_client_raises_stream_failure(
    run_async: Callable[[Callable[[AsyncClient], Awaitable[Any]]], Any],
) -> None:
    async def work(client: AsyncClient) -> tuple[str, int]:
        with pytest.raises(StreamFailureError) as failed:
            _ = (await client.query(LATE_ERROR, settings=ONE_ROW_BLOCKS)).result_set
        return str(failed.value), await client.command("SELECT 1")

    message, after = run_async(work)

    assert "Value passed to 'throwIf' function is non-zero" in message
    assert after == 1


def test_http_when_a_small_result_runs_long_then_first_bytes_come_before_the_end(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    started = time.monotonic()
    response = urllib3.request(
        "POST",
        f"http://{warehouse_endpoint.address}/?max_block_size=1",
        body=b"SELECT sleepEachRow(0.1) FROM numbers(15) FORMAT TSV",
        headers={"X-ClickHouse-User": credentials.user, "X-ClickHouse-Key": credentials.password.get_secret_value()},
        preload_content=False,
        retries=False,
    )
    first_byte_s = time.monotonic() - started
    body = response.read()
    total_s = time.monotonic() - started
    failing = post(warehouse_endpoint.address, credentials, LATE_ERROR.encode(), max_block_size="1")

    assert response.status == 200 and body == b"0\n" * 15
    assert first_byte_s < total_s / 2, (first_byte_s, total_s)
    assert failing.status == 200  # the rows before the error were already on their way
    tag = failing.headers["x-clickhouse-exception-tag"]
    assert failing.body.startswith(b"0\t0\n")
    assert failing.body.endswith(f"{tag}\r\n__exception__\r\n".encode())
    assert b"Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero" in failing.body


# External data: files of a form are tables for one query ---------------------------------------------

MOVIES = b"movie,year\nThe Sting,1973\nScarface,1983\nHeat,1995\n"


def test_external_data_when_sent_by_the_client_then_the_query_reads_it(
    client: Client,
    run_async: Callable[[Callable[[AsyncClient], Awaitable[Any]]], Any],
    warehouse_settings: Settings,
    fresh_database: str,
) -> None:
    data = ExternalData(
        file_name="movies.csv", data=MOVIES, fmt="CSVWithNames", structure=["movie String", "year UInt16"]
    )
    actors = ExternalData(file_name="actors.tsv", data=b"Al Pacino\t1940\n", types="String,UInt16")
    in_session = connect(warehouse_settings, database=fresh_database, session_id=str(uuid.uuid4()))
    try:
        rows = client.query(
            "SELECT movie FROM movies WHERE year > {y:UInt16} ORDER BY year", parameters={"y": 1980}, external_data=data
        ).result_rows
        count = client.command("SELECT count() FROM actors WHERE _2 = 1940", external_data=actors)
        sessioned = in_session.command("SELECT max(year) FROM movies", external_data=data)
        after = in_session.command("EXISTS TEMPORARY TABLE movies")
    finally:
        in_session.close()
    by_async = run_async(lambda async_client: async_client.command("SELECT min(year) FROM movies", external_data=data))

    assert rows == [("Scarface",), ("Heat",)]
    assert count == 1
    assert sessioned == 1995
    assert after == 0  # the table lived for that query only
    assert by_async == 1973


def test_external_data_when_posted_as_a_form_then_the_query_reads_it(
    warehouse_endpoint: Endpoint, credentials: Credentials, fresh_database: str
) -> None:
    body, content_type = urllib3.encode_multipart_formdata(
        {"query": "SELECT sum(year) FROM movies", "movies": ("movies.csv", MOVIES, "text/csv")}
    )

    response = post(
        warehouse_endpoint.address,
        credentials,
        body,
        headers={"Content-Type": content_type},
        database=fresh_database,
        movies_structure="movie String, year UInt16",
        movies_format="CSVWithNames",
    )
    unstructured = post(
        warehouse_endpoint.address, credentials, body, headers={"Content-Type": content_type}, database=fresh_database
    )

    assert response.status == 200, response.body
    assert response.body == b"5951\n"
    assert unstructured.status == 400 and unstructured.code == "36"


# A dictionary sourced from this server's own table loads under the kernel confinement ----------------


def test_dictionary_when_sourced_from_a_local_table_then_loads_while_confined(
    client: Client, warehouse_endpoint: Endpoint, credentials: Credentials, fresh_database: str
) -> None:
    client.command("CREATE TABLE rates (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    client.command("INSERT INTO rates VALUES (1, 'EURUSD'), (2, 'USDJPY')")
    client.command(
        f"CREATE DICTIONARY names (id UInt64, name String) PRIMARY KEY id "
        f"SOURCE(CLICKHOUSE(TABLE 'rates' DB '{fresh_database}')) LIFETIME(0) LAYOUT(FLAT())"
    )

    by_client = client.command("SELECT dictGet('names', 'name', toUInt64(2))")
    raw = post(
        warehouse_endpoint.address,
        credentials,
        b"SELECT dictGet('names', 'name', toUInt64(1))",
        database=fresh_database,
    )

    assert by_client == "USDJPY"
    assert raw.status == 200 and raw.body == b"EURUSD\n", raw.body


@pytest.mark.parametrize(
    "source", ["user {user} password {password}", "USER {user} PASSWORD {password} HOST 'localhost'"]
)
def test_dictionary_when_its_source_names_the_http_user_then_it_loads(
    client: Client, credentials: Credentials, fresh_database: str, source: str
) -> None:
    # dbt-clickhouse writes every CLICKHOUSE source with the profile's user and password.
    secret = credentials.password.get_secret_value()
    named = source.format(user=f"'{credentials.user}'", password=f"'{secret}'")
    client.command("CREATE TABLE rates (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    client.command("INSERT INTO rates VALUES (1, 'EURUSD'), (2, 'USDJPY')")
    client.command(
        f"CREATE DICTIONARY names (id UInt64, name String) PRIMARY KEY id "
        f"SOURCE(CLICKHOUSE({named} DB '{fresh_database}' TABLE 'rates')) LIFETIME(0) LAYOUT(FLAT())"
    )

    assert client.command("SELECT dictGet('names', 'name', toUInt64(2))") == "USDJPY"


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("USER {analyst} PASSWORD {analyst_password}", "516"),  # only the read-write users are the engine's
        ("USER {user} PASSWORD 'wrong'", "516"),
        ("USER 'nobody'", "516"),
        ("USER {user} PASSWORD {password} HOST '127.0.0.2' PORT 9000", "1000"),  # no connection leaves
    ],
)
def test_dictionary_when_its_source_names_another_user_or_host_then_it_does_not_load(
    client: Client,
    warehouse_endpoint: Endpoint,
    credentials: Credentials,
    fresh_database: str,
    source: str,
    code: str,
) -> None:
    named = source.format(
        user=f"'{credentials.user}'",
        password=f"'{credentials.password.get_secret_value()}'",
        analyst=f"'{credentials.analyst_user}'",
        analyst_password=f"'{credentials.analyst_password.get_secret_value()}'",
    )
    client.command("CREATE TABLE rates (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    client.command("INSERT INTO rates VALUES (1, 'EURUSD')")
    client.command(
        f"CREATE DICTIONARY names (id UInt64, name String) PRIMARY KEY id "
        f"SOURCE(CLICKHOUSE({named} DB '{fresh_database}' TABLE 'rates')) LIFETIME(0) LAYOUT(FLAT())"
    )

    reply = post(
        warehouse_endpoint.address,
        credentials,
        b"SELECT dictGet('names', 'name', toUInt64(1))",
        database=fresh_database,
    )

    assert reply.status != 200 and reply.code == code, reply.body
    assert b"EURUSD" not in reply.body


def test_grants_and_privilege_errors_when_the_service_user_asks_then_they_name_the_http_user(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    grants = post(warehouse_endpoint.address, credentials, b"SHOW GRANTS")
    lowered = post(warehouse_endpoint.address, credentials, b"-- who am I\nshow grants FORMAT TSV")
    denied = post(warehouse_endpoint.address, credentials, b"CREATE NAMED COLLECTION unnamed AS a = 1")

    assert grants.status == 200 and lowered.status == 200, (grants.body, lowered.body)
    for reply in (grants, lowered):
        lines = reply.body.decode().splitlines()
        assert lines and all(line.startswith("GRANT ") for line in lines), lines
        assert all(f" TO {credentials.user}" in line and " TO default" not in line for line in lines), lines
    assert denied.code == "497" and denied.body.startswith(b"Code: 497. DB::Exception: " + credentials.user.encode())


# Native output follows the client's protocol revision: block info, DateTime zones -------------------

ZONED = "CREATE TABLE quotes (at DateTime('Asia/Tokyo'), n UInt64) ENGINE = MergeTree ORDER BY n"
BLOCK_INFO = b"\x01\x00\x02\xff\xff\xff\xff\x00"  # overflow flag 0, bucket -1


def test_native_when_client_announces_its_revision_then_datetime_keeps_its_zone(client: Client) -> None:
    client.command(ZONED)
    client.command("INSERT INTO quotes SELECT toDateTime(number, 'Asia/Tokyo'), number FROM numbers(100000)")

    result = client.query("SELECT at, n, toDateTime(0, 'America/New_York') AS ny FROM quotes WHERE n = 3")
    # Many streamed blocks: each must carry its block info, or the client misreads the rest.
    total = client.query("SELECT sum(n), max(at) FROM quotes SETTINGS max_block_size = 1000").result_rows[0]

    assert client.protocol_version == 54405  # its probe saw block info, as from a ClickHouse server
    assert [column.name for column in result.column_types] == [
        "DateTime('Asia/Tokyo')",
        "UInt64",
        "DateTime('America/New_York')",
    ]
    at, _, ny = result.result_rows[0]
    assert str(at.tzinfo) == "Asia/Tokyo" and at.timestamp() == 3
    assert str(ny.tzinfo) == "America/New_York" and ny.timestamp() == 0
    assert total[0] == 4999950000 and total[1].timestamp() == 99999 and str(total[1].tzinfo) == "Asia/Tokyo"


def test_native_when_the_analyst_reads_zoned_columns_then_zones_arrive(client: Client, analyst: Client) -> None:
    client.command(ZONED)
    client.command("INSERT INTO quotes VALUES (7, 1)")

    at = analyst.query("SELECT at FROM quotes").result_rows[0][0]

    assert analyst.protocol_version == 54405
    assert str(at.tzinfo) == "Asia/Tokyo" and at.timestamp() == 7


def test_async_native_when_client_announces_its_revision_then_datetime_keeps_its_zone(
    run_async: Callable[[Callable[[AsyncClient], Awaitable[Any]]], Any],
) -> None:
    async def work(client: AsyncClient) -> Any:
        result = await client.query(
            "SELECT toDateTime(5, 'Asia/Tokyo') AS t FROM numbers(3000) SETTINGS max_block_size = 7"
        )
        return client.protocol_version, result.result_rows

    version, rows = run_async(work)

    assert version == 54405
    assert len(rows) == 3000 and {str(row[0].tzinfo) for row in rows} == {"Asia/Tokyo"}
    assert rows[0][0].timestamp() == 5


def test_sqlalchemy_native_when_reading_a_zoned_column_then_datetime_keeps_its_zone(
    client: Client, engine: sqlalchemy.Engine
) -> None:
    client.command(ZONED)
    client.command("INSERT INTO quotes VALUES (9, 1)")

    with engine.connect() as connection:
        at = connection.execute(sqlalchemy.text("SELECT at FROM quotes")).scalar_one()

    assert str(at.tzinfo) == "Asia/Tokyo" and at.timestamp() == 9


def test_http_native_when_revision_given_then_written_for_it(
    warehouse_endpoint: Endpoint, credentials: Credentials, fresh_database: str
) -> None:
    sql = b"SELECT toDateTime(1, 'Asia/Tokyo') AS t, toUInt8(2) AS u FORMAT Native"
    columns = b"\x02\x01\x01t"

    def native(revision: str = "") -> bytes:
        address = warehouse_endpoint.address
        if revision:
            response = post(address, credentials, sql, database=fresh_database, client_protocol_version=revision)
        else:
            response = post(address, credentials, sql, database=fresh_database)
        assert response.status == 200, response.body
        return response.body

    tokyo = b"\x16DateTime('Asia/Tokyo')\x01\x00\x00\x00\x01u\x05UInt8"
    assert native() == columns + b"\x08DateTime\x01\x00\x00\x00\x01u\x05UInt8\x02"  # none: revision 0
    assert native("54405") == BLOCK_INFO + columns + tokyo + b"\x02"
    assert native("54336") == BLOCK_INFO + columns + b"\x08DateTime\x01\x00\x00\x00\x01u\x05UInt8\x02"
    assert native("54460") == (
        BLOCK_INFO + columns + b"\x16DateTime('Asia/Tokyo')\x00\x01\x00\x00\x00\x01u\x05UInt8\x00\x02"
    )
