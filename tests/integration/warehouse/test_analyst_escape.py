"""Escape attempts by the read-only analyst against the real warehouse service.

Each attempt is sent over HTTP as the analyst and must be refused, and a canary file of
the host (plus the warehouse's own secrets file) must never come back. The corpus covers
the syntax that fooled the old hand-written lexer and what ClickHouse's grammar offers
besides; a Hypothesis strategy wraps forbidden calls in random ClickHouse syntax. What
the analyst may read and set is in ``test_analyst_reads.py``; its guards (access log,
login lock-out, concurrency) in ``test_analyst_guards.py``.
"""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials
from tests.integration.warehouse.analyst import CANARY_TEXT, as_analyst, assert_refused
from tests.integration.warehouse.http import _POOL, Response, post


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
            "POST",
            url + "?" + urlencode(params),
            body=gzip.compress(sql.encode()),
            headers={**auth, "Content-Encoding": "gzip"},
        )
    elif transport == "multipart":
        body, content_type = _multipart({"query": sql, **params})
        response = _POOL.request("POST", url, body=body, headers={**auth, "Content-Type": content_type})
    else:
        response = _POOL.request("POST", url + "?" + urlencode(params), body=sql.encode(), headers=auth)
    reply = Response(response.status, {k.lower(): v for k, v in response.headers.items()}, response.data)

    assert_refused(reply)


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


FORBIDDEN_CALLS = st.sampled_from(
    [
        "file('{path}')",
        "FILE('{path}')",
        "`file`('{path}')",
        "\"file\"('{path}')",
        "file(x'{hex}')",
        "file(unhex('{hex}'))",
        "getServerSetting('user_files_path')",
        "addressToLine(toUInt64(1))",
    ]
)
NOISE = st.sampled_from(
    [
        "",
        " ",
        "\n",
        "\t",
        "/* ' */",
        "/* /* ' */ \" */",
        "-- '\n",
        "# '\n",
        "$$'$$",
        "$t$ ' $t$",
        "'\\''",
        "''''",
        "`'`",
        '"\\""',
        "x'27'",
        "b'00100111'",
        "1",
        "NULL",
    ]
)
SHAPES = st.sampled_from(
    [
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
    ]
)


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


@pytest.mark.parametrize(
    "statement",
    [
        "EXISTS TABLE `{path}`",
        "SELECT * FROM `{path}`",
        "SELECT * FROM default.`{path}`",
        "DESCRIBE TABLE `{path}`",
        "SHOW CREATE TABLE `{path}`",
        "EXPLAIN SELECT * FROM `{path}`",
        "SELECT 1 IN default.`{path}`",
    ],
)
def test_analyst_when_a_table_is_named_by_a_host_path_then_the_policy_refuses_it_whether_the_file_exists(
    warehouse_endpoint: Endpoint, credentials: Credentials, canary: Path, statement: str
) -> None:
    present = as_analyst(warehouse_endpoint, credentials, statement.format(path=canary))
    absent = as_analyst(warehouse_endpoint, credentials, statement.format(path=canary.with_name("absent.txt")))

    for reply in (present, absent):
        assert_refused(reply)
        assert b"a table is named by plain words" in reply.body, reply.body


def test_analyst_when_no_database_is_named_then_names_resolve_in_the_warehouses_database(
    warehouse_endpoint: Endpoint, credentials: Credentials, tickwave_database: str
) -> None:
    reply = as_analyst(warehouse_endpoint, credentials, "SELECT currentDatabase(), count() > 0 FROM schema_migrations")

    assert reply.status == 200, reply.body
    assert reply.body == f"{tickwave_database}\t1\n".encode()
