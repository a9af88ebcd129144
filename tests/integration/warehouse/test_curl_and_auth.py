"""The real curl binary against the embedded warehouse: health, queries, inserts, errors and users."""

from __future__ import annotations

import gzip
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials, resolve_credentials
from tests.integration.warehouse.http import post
from tickwave.config import Settings


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: str


def curl(url: str, *args: str, data: bytes | None = None) -> Reply:
    command = ["curl", "-sS", "-g", "-D", "-", *args, url]
    if data is not None:
        command[1:1] = ["--data-binary", "@-"]
    result = subprocess.run(command, input=data, capture_output=True, check=True, timeout=60)
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return Reply(int(lines[0].split()[1]), headers, body.decode())


@pytest.fixture(scope="module")
def credentials(warehouse_settings: Settings) -> Credentials:
    return resolve_credentials(warehouse_settings)


@pytest.fixture
def base(warehouse_endpoint: Endpoint) -> str:
    return f"http://{warehouse_endpoint.address}/"


def service_user(credentials: Credentials) -> str:
    return f"{credentials.user}:{credentials.password.get_secret_value()}"


def analyst(credentials: Credentials) -> str:
    return f"{credentials.analyst_user}:{credentials.analyst_password.get_secret_value()}"


def url(base: str, **params: str) -> str:
    return base + "?" + urllib.parse.urlencode(params)


def test_ping_when_called_then_answers_ok_without_credentials(base: str) -> None:
    assert curl(base + "ping").body == "Ok.\n"
    assert curl(base).body == "Ok.\n"


def test_get_select_when_authenticated_then_returns_tab_separated_with_clickhouse_headers(
    base: str, credentials: Credentials
) -> None:
    reply = curl(url(base, query="SELECT 1 + 1, 'tick'", query_id="q-42"), "-u", service_user(credentials))

    assert reply.status == 200
    assert reply.body == "2\ttick\n"
    assert reply.headers["x-clickhouse-query-id"] == "q-42"
    assert reply.headers["x-clickhouse-format"] == "TabSeparated"
    assert reply.headers["x-clickhouse-timezone"] == "UTC"
    assert '"result_rows":"1"' in reply.headers["x-clickhouse-summary"]


def test_post_insert_csv_when_service_user_then_rows_land(
    base: str, credentials: Credentials, fresh_database: str
) -> None:
    user = service_user(credentials)
    create = f"CREATE TABLE {fresh_database}.prices (symbol String, bid Float64) ENGINE = MergeTree ORDER BY symbol"
    curl(base, "-u", user, data=create.encode())

    inserted = curl(
        url(base, query=f"INSERT INTO {fresh_database}.prices FORMAT CSV"),
        "-u",
        user,
        data=b"EURUSD,1.085\nUSDJPY,151.25\n",
    )
    compressed = curl(
        url(base, query=f"INSERT INTO {fresh_database}.prices FORMAT CSV"),
        "-u",
        user,
        "-H",
        "Content-Encoding: gzip",
        data=gzip.compress(b"GBPUSD,1.27\n"),
    )
    read = curl(
        url(base, query=f"SELECT symbol, bid FROM {fresh_database}.prices ORDER BY symbol FORMAT CSV"), "-u", user
    )

    assert inserted.status == 200 and '"written_rows":"2"' in inserted.headers["x-clickhouse-summary"]
    assert compressed.status == 200
    assert read.body == '"EURUSD",1.085\n"GBPUSD",1.27\n"USDJPY",151.25\n'


def test_post_insert_when_data_is_values_json_or_tsv_then_rows_land(
    base: str, credentials: Credentials, fresh_database: str
) -> None:
    user = service_user(credentials)
    table = f"{fresh_database}.quotes"
    curl(
        base,
        "-u",
        user,
        data=f"CREATE TABLE {table} (symbol String, bid Float64) ENGINE = MergeTree ORDER BY symbol".encode(),
    )

    values = curl(base, "-u", user, data=f"INSERT INTO {table} VALUES ('EURUSD', 1.1), ('USDJPY', 151.2)".encode())
    json_rows = curl(
        url(base, query=f"INSERT INTO {table} FORMAT JSONEachRow"), "-u", user, data=b'{"symbol":"GBPUSD","bid":1.27}\n'
    )
    tsv = curl(base, "-u", user, data=f"INSERT INTO {table} FORMAT TSV\nAUDUSD\t0.66\n".encode())
    read = curl(url(base, query=f"SELECT symbol FROM {table} ORDER BY symbol"), "-u", user)

    assert [values.status, json_rows.status, tsv.status] == [200, 200, 200]
    assert read.body.split() == ["AUDUSD", "EURUSD", "GBPUSD", "USDJPY"]


@pytest.mark.parametrize(
    ("sql", "status", "code"),
    [
        ("SELEC 1", 400, "62"),
        ("SELECT * FROM no_such_table_anywhere", 404, "60"),
        ("SELECT 1; SELECT 2", 400, "62"),
        ("SELECT 1 FORMAT NoSuchFormat", 404, "73"),
        ("", 400, "62"),
    ],
)
def test_errors_when_query_fails_then_status_code_header_and_body_match_clickhouse(
    base: str, credentials: Credentials, sql: str, status: int, code: str
) -> None:
    reply = curl(base, "-u", service_user(credentials), data=sql.encode())

    assert reply.status == status
    assert reply.headers["x-clickhouse-exception-code"] == code
    assert reply.body.startswith(f"Code: {code}. DB::Exception: ")


def test_auth_when_password_is_wrong_then_516_for_every_scheme(base: str, credentials: Credentials) -> None:
    query = url(base, query="SELECT 1")
    basic = curl(query, "-u", f"{credentials.user}:wrong")
    headers = curl(query, "-H", f"X-ClickHouse-User: {credentials.analyst_user}", "-H", "X-ClickHouse-Key: wrong")
    params = curl(url(base, query="SELECT 1", user=credentials.user, password="wrong"))
    nobody = curl(query)

    for reply in (basic, headers, params, nobody):
        assert reply.status == 403
        assert reply.headers["x-clickhouse-exception-code"] == "516"
        assert "Authentication failed" in reply.body
        assert credentials.password.get_secret_value() not in reply.body


def test_auth_when_mixing_header_and_basic_credentials_then_refused(base: str, credentials: Credentials) -> None:
    key = credentials.password.get_secret_value()
    reply = curl(
        url(base, query="SELECT 1"),
        "-u",
        service_user(credentials),
        "-H",
        f"X-ClickHouse-User: {credentials.user}",
        "-H",
        f"X-ClickHouse-Key: {key}",
    )

    assert reply.headers["x-clickhouse-exception-code"] == "516"


def test_analyst_when_reading_then_allowed(base: str, credentials: Credentials, migrated_database: str) -> None:
    reply = curl(url(base, query="SELECT count() FROM ticks", database=migrated_database), "-u", analyst(credentials))

    assert reply.status == 200
    assert reply.body.strip().isdigit()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO ticks (symbol) VALUES ('X')",
        "CREATE TABLE t_analyst (x UInt8) ENGINE = Memory",
        "DROP TABLE ticks",
        "OPTIMIZE TABLE ticks FINAL",
        "SELECT 1 INTO OUTFILE '/tmp/tickwave-analyst-outfile'",
        "INSERT INTO FUNCTION file('/tmp/tickwave-analyst-file', 'CSV') SELECT 1",
        "SET readonly = 0",
    ],
)
def test_analyst_when_writing_or_escaping_then_refused_readonly(
    base: str, credentials: Credentials, migrated_database: str, sql: str
) -> None:
    reply = curl(url(base, database=migrated_database), "-u", analyst(credentials), data=sql.encode())

    assert reply.headers.get("x-clickhouse-exception-code") == "164", reply.body
    assert not Path("/tmp/tickwave-analyst-outfile").exists()
    assert not Path("/tmp/tickwave-analyst-file").exists()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT file('/etc/hostname')",
        "SELECT * FROM file('/etc/hostname', 'LineAsString')",
        "SELECT * FROM FILE /* comment */ ('/etc/hostname', 'LineAsString')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')",
        "SELECT * FROM Python(settings)",
        "SELECT * FROM {t:Identifier}",
    ],
)
def test_analyst_when_query_reaches_outside_the_warehouse_then_refused(
    base: str, credentials: Credentials, sql: str
) -> None:
    reply = curl(url(base, param_t="system.processes"), "-u", analyst(credentials), data=sql.encode())

    assert reply.headers.get("x-clickhouse-exception-code") == "164", reply.body


def test_analyst_when_lifting_readonly_through_url_settings_then_refused(base: str, credentials: Credentials) -> None:
    lifted = curl(url(base, query="SELECT 1", readonly="0"), "-u", analyst(credentials))
    other_setting = curl(url(base, query="SELECT 1", max_threads="1"), "-u", analyst(credentials))
    python_function = curl(url(base, query="SELECT 1", allow_python_table_function="1"), "-u", analyst(credentials))

    for reply in (lifted, other_setting, python_function):  # off the read-only user's allow-list
        assert reply.headers["x-clickhouse-exception-code"] == "164", reply.body


def test_service_user_when_enabling_python_table_function_then_engine_refuses(
    base: str, credentials: Credentials
) -> None:
    reply = curl(url(base, query="SELECT 1", allow_python_table_function="1"), "-u", service_user(credentials))

    assert reply.headers["x-clickhouse-exception-code"] == "392", reply.body


def test_get_when_service_user_writes_then_refused_as_in_clickhouse(
    base: str, credentials: Credentials, migrated_database: str
) -> None:
    reply = curl(
        url(base, query="INSERT INTO ticks (symbol) VALUES ('GET')", database=migrated_database),
        "-u",
        service_user(credentials),
    )

    assert reply.headers["x-clickhouse-exception-code"] == "164"


def test_get_when_service_user_reads_then_allowed(base: str, credentials: Credentials) -> None:
    reply = curl(url(base, query="SELECT getSetting('readonly')"), "-u", service_user(credentials))

    assert reply.body == "2\n"


def test_response_when_client_accepts_encodings_then_compressed_and_decoded_by_curl(
    base: str, credentials: Credentials
) -> None:
    reply = curl(url(base, query="SELECT number FROM numbers(100000)"), "--compressed", "-u", service_user(credentials))

    assert reply.headers["content-encoding"] in ("zstd", "gzip", "deflate")
    assert reply.body.splitlines()[-1] == "99999"


def test_auth_when_a_wrong_password_comes_with_a_large_body_then_client_reads_516_not_a_reset(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    wrong = Credentials(credentials.user, SecretStr("wrong"), credentials.analyst_user, credentials.analyst_password)

    response = post(warehouse_endpoint.address, wrong, b"1,x\n" * 1_000_000, query="INSERT INTO t FORMAT CSV")

    assert (response.status, response.code) == (403, "516")
