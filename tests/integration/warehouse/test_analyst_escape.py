"""Escape attempts by the read-only analyst against the real warehouse service.

Each attempt is sent over HTTP as the analyst and must be refused, and a canary file of
the host (plus the warehouse's own secrets file) must never come back. The corpus covers
the syntax that fooled the old hand-written lexer and what ClickHouse's grammar offers
besides; a Hypothesis strategy wraps forbidden calls in random ClickHouse syntax. The
queries the READMEs show analysts keep working.
"""

from __future__ import annotations

import dataclasses
import gzip
import re
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tests.integration.warehouse.http import _POOL, Response, post
from tickwave.config import Settings
from tickwave.endpoints import Endpoint
from tickwave.warehouse.credentials import Credentials, resolve_credentials, secrets_path
from tickwave.warehouse.migrate import migrate

REPO = Path(__file__).resolve().parents[3]
CANARY_TEXT = f"canary-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def credentials(warehouse_settings: Settings) -> Credentials:
    return resolve_credentials(warehouse_settings)


@pytest.fixture(scope="module")
def canary(state_dir: Path) -> Path:
    path = state_dir / "canary.txt"
    path.write_text(CANARY_TEXT + "\n")
    return path


@pytest.fixture(scope="module")
def secrets(warehouse_settings: Settings, credentials: Credentials) -> tuple[Path, str]:
    return secrets_path(warehouse_settings), credentials.password.get_secret_value()


def as_analyst(endpoint: Endpoint, credentials: Credentials, sql: str, **params: str) -> Response:
    return post(endpoint.address, credentials, sql.encode(), analyst=True, **params)


def assert_refused(reply: Response, *leaks: str, code: str | None = "164") -> None:
    body = reply.body.decode("utf-8", "replace")
    assert reply.status != 200, body
    assert reply.code is not None, body
    if code is not None:
        assert reply.code == code, body
    for leak in (CANARY_TEXT, *leaks):
        assert leak not in body


def corpus(path: str) -> list[str]:
    hex_path = path.encode().hex()
    binary_path = "".join(f"{byte:08b}" for byte in path.encode())
    read = f"file('{path}')"
    return [
        # heredocs (the reported hole), with and without tags
        f"SELECT $$'$$ AS a, {read} AS b --'",
        f"SELECT $tag$'$tag$ AS a, {read} AS b -- '",
        f"SELECT $a$ $$ ' $a$, {read}",
        # every comment syntax, nested block comments included
        f"SELECT 1 /* outer /* inner */ still a comment */, {read}",
        f"SELECT 1 -- line comment\n, {read}",
        f"SELECT 1 # hash comment\n, {read}",
        f"#!shebang comment\nSELECT {read}",
        f"SELECT 1 /* ' */, {read} /* ' */",
        # quoted identifiers and case
        f"SELECT `file`('{path}')",
        f"SELECT \"file\"('{path}')",
        f"SELECT FILE('{path}')",
        f"SELECT FiLe('{path}')",
        # backslash and doubled-quote escapes
        f"SELECT 'a\\'b' AS x, {read}",
        f"SELECT 'a''b' AS x, {read}",
        f'SELECT "a\\"b".c, {read}',
        f"SELECT `a``b`, {read}",
        # hex and binary literals hide the path
        f"SELECT file(x'{hex_path}')",
        f"SELECT file(unhex('{hex_path}'))",
        f"SELECT file(b'{binary_path}')",
        # lambdas, CTEs, subqueries, aliases
        f"SELECT arrayMap(x -> file(x), ['{path}'])",
        f"WITH {read} AS c SELECT c",
        f"WITH t AS (SELECT {read} AS c) SELECT * FROM t",
        f"SELECT * FROM (SELECT {read})",
        f"SELECT 1 WHERE 'x' IN (SELECT {read})",
        f"SELECT {read} AS count",
        f"SELECT count() FROM numbers(1) GROUP BY {read}",
        # calls the parse tree does not name (APPLY, REPLACE)
        f"SELECT * APPLY(file) FROM (SELECT '{path}' AS p)",
        f"SELECT * APPLY file FROM (SELECT '{path}' AS p)",
        f"SELECT * APPLY(x -> file(x)) FROM (SELECT '{path}' AS p)",
        f"SELECT COLUMNS('p') APPLY(file) FROM (SELECT '{path}' AS p)",
        f"SELECT s.* APPLY(file) FROM (SELECT '{path}' AS p) AS s",
        f"SELECT * REPLACE(file(p) AS p) FROM (SELECT '{path}' AS p)",
        f"SELECT * FROM (SELECT * APPLY(file) FROM (SELECT '{path}' AS p))",
        f"DESCRIBE (SELECT * APPLY(file) FROM (SELECT '{path}' AS p))",
        # AI functions, by name and alias
        "SELECT AIGenerate('hello')",
        "SELECT AIClassify('hello', ['a'])",
        # table functions
        f"SELECT * FROM file('{path}', 'LineAsString')",
        f"SELECT * FROM FILE /* c */ ('{path}', 'LineAsString')",
        f"DESCRIBE TABLE file('{path}', 'LineAsString')",
        f"SELECT * FROM view(SELECT {read})",
        f"SELECT * FROM sqlite('{path}', 't')",
        f"SELECT * FROM executable('cat {path}', 'LineAsString', 'x String')",
        f"SELECT * FROM fileCluster('default', '{path}', 'LineAsString')",
        f"SELECT * FROM icebergLocal('{path}')",
        "SELECT * FROM filesystem('/')",
        "SELECT * FROM url('http://127.0.0.1:9/', 'CSV', 'x String')",
        "SELECT * FROM s3('http://127.0.0.1:9/b/k', 'CSV')",
        "SELECT * FROM remote('127.0.0.1', system.one)",
        "SELECT * FROM merge('system', '^processes$')",
        "SELECT * FROM loop(numbers(1)) LIMIT 1",
        "SELECT * FROM input('x String')",
        "SELECT * FROM python('x')",
        "SELECT * FROM mysql('127.0.0.1:9', 'd', 't', 'u', 'p')",
        "SELECT * FROM dictionary('d')",
        # settings in the query
        "SELECT 1 SETTINGS readonly = 0",
        "SELECT 1 SETTINGS max_execution_time = 0",
        f"SELECT {read} SETTINGS allow_python_table_function = 1",
        # multi-statements and writes
        f"SELECT 1; SELECT {read}",
        "SELECT 1; DROP TABLE ticks",
        f"INSERT INTO FUNCTION file('{path}.out', 'CSV') SELECT 1",
        "CREATE TABLE escape_test (a Int8) ENGINE = Memory",
        "DROP TABLE IF EXISTS ticks",
        "TRUNCATE TABLE IF EXISTS ticks",
        "ALTER TABLE ticks DELETE WHERE 1",
        "OPTIMIZE TABLE ticks",
        "SET readonly = 0",
        "SYSTEM FLUSH LOGS",
        "KILL QUERY WHERE 1",
        "CREATE FUNCTION escape_read AS x -> file(x)",
        f"CREATE DICTIONARY d (a String) PRIMARY KEY a SOURCE(FILE(path '{path}' format 'CSV')) LAYOUT(FLAT()) "
        "LIFETIME(0)",
        # INTO OUTFILE and FORMAT tricks
        f"SELECT 1 INTO OUTFILE '{path}.out'",
        f"SELECT 1 INTO OUTFILE '{path}.out' TRUNCATE FORMAT CSV",
        f"EXPLAIN SELECT 1 INTO OUTFILE '{path}.out'",
        f"SELECT {read} FORMAT JSON",
        f"SELECT 1 FORMAT Protobuf SETTINGS format_schema = '{path}:M'",
        "SELECT 1 FORMAT CapnProto",
        # dictionaries, system tables, host facts
        "SELECT dictGet('d', 'a', toUInt64(1))",
        "SELECT dictHas('d', toUInt64(1))",
        "SELECT * FROM system.processes",
        "SELECT query FROM system.processes",
        "SELECT 1 WHERE 'x' IN system.processes",
        "SELECT * FROM system.server_settings",
        "SELECT * FROM system.disks",
        "SELECT * FROM system.dictionaries",
        "SHOW PROCESSLIST",
        "SELECT getServerSetting('user_files_path')",
        "SELECT filesystemAvailable()",
        "SELECT addressToLine(toUInt64(1))",
        "SELECT aiGenerate('hello')",
        f"SELECT catboostEvaluate('{path}', 1)",
    ]


OUT_FILE_STATEMENTS = [
    "DESCRIBE (SELECT 'x' AS a) INTO OUTFILE '{target}' {mode} FORMAT TSVRaw",
    "DESC TABLE numbers(1) INTO OUTFILE '{target}' {mode}",
    "SHOW TABLES INTO OUTFILE '{target}' {mode}",
    "SHOW DATABASES INTO OUTFILE '{target}' {mode}",
    "SHOW COLUMNS FROM system.one INTO OUTFILE '{target}' {mode}",
    "SHOW CREATE TABLE system.one INTO OUTFILE '{target}' {mode}",
    "EXISTS system.one INTO OUTFILE '{target}' {mode}",
    "EXISTS DATABASE system INTO OUTFILE '{target}' {mode}",
    "EXPLAIN SELECT 1 INTO OUTFILE '{target}' {mode}",
    "SELECT 1 INTO OUTFILE '{target}' {mode}",
]


@pytest.mark.parametrize("mode", ["TRUNCATE", "APPEND"])
@pytest.mark.parametrize("statement", OUT_FILE_STATEMENTS)
def test_analyst_when_writing_an_out_file_into_the_data_directory_then_refused_and_nothing_written(
    warehouse_endpoint: Endpoint, credentials: Credentials, state_dir: Path, statement: str, mode: str
) -> None:
    target = state_dir / "data" / "warehouse" / f"planted-{uuid.uuid4().hex}.sql"

    reply = as_analyst(warehouse_endpoint, credentials, statement.format(target=target, mode=mode))

    assert_refused(reply)
    assert not target.exists()


def _multipart(fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return (("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}")


@pytest.mark.parametrize("transport", ["get", "gzip", "multipart", "param"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * APPLY(file) FROM (SELECT {p:String} AS p)",
        "SELECT * APPLY(x -> file(x)) FROM (SELECT {p:String} AS p)",
        "SELECT COLUMNS('p') APPLY(file) FROM (SELECT {p:String} AS p)",
    ],
)
def test_analyst_when_apply_comes_over_another_transport_then_refused(
    warehouse_endpoint: Endpoint, credentials: Credentials, canary: Path, transport: str, sql: str
) -> None:
    user, password = credentials.analyst_user, credentials.analyst_password.get_secret_value()
    auth = {"X-ClickHouse-User": user, "X-ClickHouse-Key": password}
    url = f"http://{warehouse_endpoint.address}/"
    params = {"param_p": str(canary)}
    if transport == "get":
        response = _POOL.request("GET", url, fields={"query": sql, **params}, headers=auth)
    elif transport == "gzip":
        response = _POOL.request(
            "POST", url + "?" + urlencode(params), body=gzip.compress(sql.encode()),
            headers={**auth, "Content-Encoding": "gzip"},
        )  # fmt: skip
    elif transport == "multipart":
        body, content_type = _multipart({"query": sql, **params})
        response = _POOL.request("POST", url, body=body, headers={**auth, "Content-Type": content_type})
    else:
        response = _POOL.request("POST", url + "?" + urlencode(params), body=sql.encode(), headers=auth)
    reply = Response(response.status, {k.lower(): v for k, v in response.headers.items()}, response.data)

    assert_refused(reply)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM system.databases",
        "SELECT data_path, metadata_path FROM system.databases",
        "SELECT metadata_path, data_paths FROM system.tables",
        "SELECT create_table_query FROM system.tables",
        "SELECT path, disk_name FROM system.parts",
        "SELECT x FROM (SELECT path AS x FROM system.parts_columns)",
        "SELECT name FROM system.tables WHERE startsWith(metadata_path, '/')",
        "SELECT COLUMNS('path') FROM system.tables",
    ],
)
def test_analyst_when_reading_host_paths_from_system_tables_then_refused(
    warehouse_endpoint: Endpoint, credentials: Credentials, state_dir: Path, sql: str
) -> None:
    assert_refused(as_analyst(warehouse_endpoint, credentials, sql), str(state_dir))


def test_analyst_when_reading_catalog_columns_of_system_tables_then_allowed_without_paths(
    warehouse_endpoint: Endpoint, credentials: Credentials, state_dir: Path
) -> None:
    for sql in (
        "SELECT name, engine FROM system.databases",
        "SELECT database, name, engine, total_rows FROM system.tables",
        "SELECT database, table, name, rows, max_time FROM system.parts",
    ):
        reply = as_analyst(warehouse_endpoint, credentials, sql)

        assert reply.status == 200, reply.body
        assert str(state_dir).encode() not in reply.body


def expected_code(sql: str) -> str:
    if "; " in sql:
        return "62"  # SYNTAX_ERROR: multi-statements
    if "allow_python_table_function" in sql:
        return "392"  # QUERY_IS_PROHIBITED: the engine refuses the setting while parsing
    return "164"  # READONLY: the policy


@pytest.mark.parametrize("index", range(len(corpus("/x"))))
def test_analyst_when_attempting_an_escape_then_refused_and_nothing_leaks(
    warehouse_endpoint: Endpoint,
    credentials: Credentials,
    canary: Path,
    secrets: tuple[Path, str],
    index: int,
) -> None:
    sql = corpus(str(canary))[index]
    secrets_file, password = secrets
    sql_on_secrets = sql.replace(str(canary), str(secrets_file))

    for attempt in (sql, sql_on_secrets):
        reply = as_analyst(warehouse_endpoint, credentials, attempt)

        assert_refused(reply, password, code=expected_code(sql))
    assert not Path(f"{canary}.out").exists()


@pytest.mark.parametrize(
    ("params", "sql"),
    [
        ({"readonly": "0"}, "SELECT 1"),
        ({"max_execution_time": "0"}, "SELECT 1"),
        ({"max_result_rows": "0"}, "SELECT 1"),
        ({"max_memory_usage": "99999999999999"}, "SELECT 1"),
        ({"allow_python_table_function": "1"}, "SELECT 1"),
        ({"max_threads": "1"}, "SELECT 1"),
        ({"date_time_output_format": "iso&readonly=0"}, "SELECT 1"),
        ({"format_template_resultset": "/etc/passwd"}, "SELECT 1"),
        ({"param_t": "system.processes"}, "SELECT * FROM {t:Identifier}"),
        ({"database": "system"}, "SELECT * FROM processes"),
        ({"default_format": "Protobuf"}, "SELECT 1"),
    ],
)
def test_analyst_when_url_parameters_loosen_or_escape_then_refused(
    warehouse_endpoint: Endpoint, credentials: Credentials, params: dict[str, str], sql: str
) -> None:
    assert_refused(as_analyst(warehouse_endpoint, credentials, sql, **params))


def test_analyst_when_url_settings_tighten_a_limit_or_shape_output_then_allowed(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    tightened = as_analyst(warehouse_endpoint, credentials, "SELECT number FROM numbers(10)", max_result_rows="5")
    shaped = as_analyst(
        warehouse_endpoint,
        credentials,
        "SELECT toInt64(1) AS x FORMAT JSONEachRow",
        output_format_json_quote_64bit_integers="0",
    )

    assert tightened.code == "396", tightened.body  # TOO_MANY_ROWS_OR_BYTES: the tighter limit applies
    assert shaped.status == 200 and shaped.body == b'{"x":1}\n', shaped.body


def test_analyst_when_the_session_uses_system_then_refused(
    warehouse_endpoint: Endpoint, credentials: Credentials
) -> None:
    session = uuid.uuid4().hex

    use = as_analyst(warehouse_endpoint, credentials, "USE system", session_id=session)
    after = as_analyst(warehouse_endpoint, credentials, "SELECT * FROM processes", session_id=session)

    assert_refused(use)
    assert after.status != 200


FORBIDDEN_CALLS = st.sampled_from([
    "file('{path}')", "FILE('{path}')", "`file`('{path}')", '"file"(\'{path}\')', "file(x'{hex}')",
    "file(unhex('{hex}'))", "getServerSetting('user_files_path')", "addressToLine(toUInt64(1))",
])  # fmt: skip
NOISE = st.sampled_from([
    "", " ", "\n", "\t", "/* ' */", "/* /* ' */ \" */", "-- '\n", "# '\n", "$$'$$", "$t$ ' $t$", "'\\''", "''''",
    "`'`", '"\\""', "x'27'", "b'00100111'", "1", "NULL",
])  # fmt: skip
SHAPES = st.sampled_from([
    "SELECT {a} {call} {b}",
    "SELECT {a}, {call} AS v {b}",
    "SELECT {a} AS n, {b} AS m, {call}",
    "WITH {call} AS v SELECT {a}, v",
    "WITH t AS (SELECT {call} AS v) SELECT {a}, v FROM t",
    "SELECT * FROM (SELECT {a}, {call})",
    "SELECT arrayMap(x -> {call}, [{a}])",
    "SELECT {a} WHERE 'z' IN (SELECT toString({call}))",
    "SELECT * FROM view(SELECT {a}, {call})",
    "SELECT {a} UNION ALL SELECT {call}",
])  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    shape=SHAPES,
    call=FORBIDDEN_CALLS,
    before=NOISE,
    a=NOISE.filter(lambda n: n.strip() not in ("", "/* ' */", "/* /* ' */ \" */") and "#" not in n and "--" not in n),
    b=NOISE.filter(lambda n: "#" not in n and "--" not in n),
    upper=st.booleans(),
)
def test_analyst_when_a_forbidden_call_hides_in_random_syntax_then_refused(
    warehouse_endpoint: Endpoint,
    credentials: Credentials,
    canary: Path,
    shape: str,
    call: str,
    before: str,
    a: str,
    b: str,
    upper: bool,
) -> None:
    path = str(canary)
    text = shape.format(a=a, b=b, call=call.format(path=path, hex=path.encode().hex()))
    text = text.replace("SELECT", "select") if upper else text
    separator = "\n" if before.rstrip().startswith(("#", "--")) else " "
    sql = f"{before}{separator}{text}" if before.strip() else text

    reply = as_analyst(warehouse_endpoint, credentials, sql)

    assert_refused(reply, code=None)


def readme_queries() -> list[str]:
    queries: list[str] = []
    for readme in (
        REPO / "README.md",
        REPO / "warehouse_server" / "README.md",
        *sorted((REPO / "docs").glob("**/*.md")),
    ):
        for block in re.findall(r"```sql\n(.*?)```", readme.read_text(), re.DOTALL):
            queries.extend(query.strip() for query in block.split(";") if query.strip())
    return queries


def test_readmes_when_read_then_they_show_analyst_queries() -> None:
    assert len(readme_queries()) >= 8


@pytest.fixture(scope="module")
def tickwave_database(warehouse_settings: Settings) -> str:
    migrate(warehouse_settings)  # the configured database, where the access log lands
    return warehouse_settings.clickhouse.database


@pytest.mark.parametrize("query", readme_queries())
def test_analyst_when_running_the_documented_queries_then_they_work(
    warehouse_endpoint: Endpoint, credentials: Credentials, tickwave_database: str, query: str
) -> None:
    reply = as_analyst(warehouse_endpoint, credentials, query, database=tickwave_database)

    assert reply.status == 200, reply.body


def test_service_user_when_reading_host_files_through_the_engine_then_the_kernel_refuses(
    warehouse_endpoint: Endpoint, credentials: Credentials, canary: Path, secrets: tuple[Path, str]
) -> None:
    secrets_file, password = secrets
    for path in (canary, secrets_file):
        reply = post(warehouse_endpoint.address, credentials, f"SELECT file('{path}')".encode())

        assert reply.status != 200
        assert b"Permission denied" in reply.body
        assert CANARY_TEXT.encode() not in reply.body and password.encode() not in reply.body
    written = post(
        warehouse_endpoint.address, credentials, f"INSERT INTO FUNCTION file('{canary}.out', 'CSV') SELECT 1".encode()
    )
    assert written.status != 200 and not Path(f"{canary}.out").exists()


def wait_for_rows(endpoint: Endpoint, credentials: Credentials, database: str, sql: str) -> list[str]:
    deadline = time.monotonic() + 15
    while True:
        reply = as_analyst(endpoint, credentials, sql, database=database)
        rows = reply.body.decode().splitlines() if reply.status == 200 else []
        if rows or time.monotonic() > deadline:
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
        f"SELECT exception_code, exception FROM query_log WHERE query_id LIKE '{marker}-f%' "
        f"AND (SELECT count() FROM query_log WHERE query_id LIKE '{marker}-f%') = 2 ORDER BY query_id",
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
        tmp_path, max_failed_logins=3, failed_login_window_s=30, analyst_max_concurrent_queries=1
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
    assert service_user.status == 200  # the lock-out is per user and address


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

    # Reading system.functions again costs ~14 ms (under a global lock); an unknown name must not cost it.
    assert unknown_ms < known_ms + 5, f"median of 200 unknown names {unknown_ms:.1f} ms, known {known_ms:.1f} ms"
