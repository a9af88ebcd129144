"""The engine's ``system.query_log`` when it is on: the service user reads it, the analyst by no route.

``clickhouse.engine_query_log_days`` (off by default) has the engine keep every query's full
text, every user's, literals included. The analyst's allow-list keeps system tables closed by
default; here a warehouse of this module's own keeps the log, the service user writes a marker
into it, and the analyst tries every route to it over HTTP and over the native port: directly,
through its database, table functions that read another table (``merge``, ``remote``,
``cluster``, ``clusterAllReplicas``, ``loop``, ``view``), subqueries, ``IN``, scalars, and a
view or dictionary of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from clickhouse_driver.errors import ServerException

from adapters.endpoints import free_port
from adapters.warehouse.credentials import resolve_credentials
from tests.integration.warehouse.analyst import as_analyst, assert_refused
from tests.integration.warehouse.http import post
from tests.integration.warehouse.native import Warehouse
from tests.plugins.warehouse import start_warehouse

MARKER = f"marker-{uuid.uuid4().hex}"
READONLY = 164


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    native_port = free_port()
    supervisor, service, endpoint = start_warehouse(
        tmp_path_factory.mktemp("query-log"), native_port=native_port, engine_query_log_days=1
    )
    try:
        warehouse = Warehouse(endpoint, native_port, resolve_credentials(service.settings))
        writer = warehouse.client(database="default")
        try:
            writer.execute("CREATE DATABASE IF NOT EXISTS tickwave")
            writer.execute(f"SELECT '{MARKER}'")
            writer.execute("SYSTEM FLUSH LOGS")
        finally:
            writer.disconnect()
        yield warehouse
    finally:
        supervisor.stop(service)


ROUTES = [
    "SELECT query FROM system.query_log",
    "SELECT query FROM `system`.`query_log` AS t",
    "SELECT * FROM (SELECT query FROM system.query_log)",
    "SELECT 1 WHERE 'x' IN (SELECT query FROM system.query_log)",
    "WITH (SELECT any(query) FROM system.query_log) AS q SELECT q",
    "SELECT query FROM merge('system', '^query_log$')",
    "SELECT query FROM merge(system, 'query')",
    "SELECT query FROM merge(REGEXP('^sys'), 'log')",
    "SELECT query FROM remote('127.0.0.1', system.query_log)",
    "SELECT query FROM remote('127.0.0.1', 'system', 'query_log')",
    "SELECT query FROM cluster('default', system.query_log)",
    "SELECT query FROM clusterAllReplicas('default', system.query_log)",
    "SELECT query FROM clusterAllReplicas('default', 'system', 'query_log')",
    "SELECT query FROM loop(system, query_log) LIMIT 1",
    "SELECT query FROM view(SELECT query FROM system.query_log)",
    "DESCRIBE TABLE system.query_log",
    "CREATE VIEW tickwave.leak AS SELECT query FROM system.query_log",
    "CREATE DICTIONARY tickwave.leak (event_time DateTime, query String) PRIMARY KEY event_time "
    "SOURCE(CLICKHOUSE(db 'system' table 'query_log')) LIFETIME(0) LAYOUT(FLAT())",
    "SELECT * FROM dictionary('system.query_log')",
]


def test_engine_query_log_when_on_then_the_service_user_reads_every_query_text(warehouse: Warehouse) -> None:
    reply = post(
        warehouse.endpoint.address,
        warehouse.credentials,
        f"SELECT count() FROM system.query_log WHERE query LIKE '%{MARKER}%' AND type = 'QueryFinish'".encode(),
    )

    assert reply.status == 200, reply.body
    assert int(reply.body) >= 1


@pytest.mark.parametrize("sql", ROUTES)
def test_engine_query_log_when_the_analyst_reads_it_over_http_then_refused(warehouse: Warehouse, sql: str) -> None:
    reply = as_analyst(warehouse.endpoint, warehouse.credentials, sql)

    assert_refused(reply, MARKER, code=str(READONLY))


def test_engine_query_log_when_the_analyst_names_its_database_then_refused(warehouse: Warehouse) -> None:
    over_http = as_analyst(warehouse.endpoint, warehouse.credentials, "SELECT query FROM query_log", database="system")
    analyst = warehouse.client(analyst=True, database="system")
    try:
        with pytest.raises(ServerException) as over_native:
            analyst.execute("SELECT query FROM query_log")
    finally:
        analyst.disconnect()

    assert_refused(over_http, MARKER, code=str(READONLY))
    assert MARKER not in over_native.value.message
    assert over_native.value.code == READONLY, over_native.value.message


@pytest.mark.parametrize("sql", ROUTES)
def test_engine_query_log_when_the_analyst_reads_it_over_the_native_port_then_refused(
    warehouse: Warehouse, sql: str
) -> None:
    analyst = warehouse.client(analyst=True, database="tickwave")
    try:
        with pytest.raises(ServerException) as refused:
            analyst.execute(sql)
    finally:
        analyst.disconnect()

    assert MARKER not in refused.value.message
    assert refused.value.code == READONLY, refused.value.message
