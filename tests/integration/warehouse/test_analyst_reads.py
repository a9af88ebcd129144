"""What the read-only analyst may read and set, and what it may not, against the real warehouse service.

System tables without host paths, URL parameters that only tighten, no ``USE system``
in a session; every SQL query the READMEs show analysts keeps working, and so does every
query the JDBC driver sends when DBeaver, DataGrip or Metabase connects and browses a table.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials
from tests.integration.warehouse.analyst import as_analyst, assert_refused
from tests.integration.warehouse.http import post
from tests.jdbc_metadata_sql import metadata_queries

REPO = Path(__file__).resolve().parents[3]


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


@pytest.mark.parametrize("query", readme_queries())
def test_analyst_when_running_the_documented_queries_then_they_work(
    warehouse_endpoint: Endpoint, credentials: Credentials, tickwave_database: str, query: str
) -> None:
    reply = as_analyst(warehouse_endpoint, credentials, query, database=tickwave_database)

    assert reply.status == 200, reply.body


JDBC_TABLE = "jdbc_browsed"
JDBC_CALLS = dict(metadata_queries("", ""))


@pytest.fixture(scope="module")
def jdbc_table(warehouse_endpoint: Endpoint, credentials: Credentials, tickwave_database: str) -> str:
    sql = (
        f"CREATE TABLE IF NOT EXISTS {tickwave_database}.{JDBC_TABLE} (id UInt32, code FixedString(3), "
        "at DateTime64(3, 'UTC'), address IPv4) ENGINE = MergeTree ORDER BY (code, id)"
    )
    created = post(warehouse_endpoint.address, credentials, sql.encode())
    assert created.status == 200, created.body
    return JDBC_TABLE


@pytest.mark.parametrize("call", sorted(JDBC_CALLS))
def test_analyst_when_the_jdbc_driver_connects_and_browses_then_every_query_answers(
    warehouse_endpoint: Endpoint,
    credentials: Credentials,
    tickwave_database: str,
    jdbc_table: str,
    state_dir: Path,
    call: str,
) -> None:
    sql = dict(metadata_queries(tickwave_database, jdbc_table))[call]

    reply = as_analyst(warehouse_endpoint, credentials, sql, database=tickwave_database)

    assert reply.status == 200, reply.body
    assert str(state_dir).encode() not in reply.body


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("getTables of a schema", "{database}\t{table}\tMergeTree"),
        ("getColumns of a table", "id,code,at,address"),
        ("getPrimaryKeys", "code,id"),
    ],
)
def test_analyst_when_the_jdbc_driver_lists_tables_columns_and_keys_then_it_sees_the_table(
    warehouse_endpoint: Endpoint,
    credentials: Credentials,
    tickwave_database: str,
    jdbc_table: str,
    call: str,
    expected: str,
) -> None:
    sql = dict(metadata_queries(tickwave_database, jdbc_table))[call]

    reply = as_analyst(warehouse_endpoint, credentials, sql, database=tickwave_database, default_format="TSV")

    rows = [line.split("\t") for line in reply.body.decode().splitlines()]
    assert reply.status == 200, reply.body
    if call == "getTables of a schema":  # TABLE_CAT, TABLE_SCHEM, TABLE_NAME, TABLE_TYPE
        listed = {"\t".join(row[1:4]) for row in rows}
        assert expected.format(database=tickwave_database, table=jdbc_table) in listed, rows
    else:  # COLUMN_NAME is the 4th column of both
        assert ",".join(row[3] for row in rows if row[2] == jdbc_table) == expected, rows
