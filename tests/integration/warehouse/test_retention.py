"""The retention table against the real engine: each table's TTL read back from its DDL, expired rows gone, replayed
history (old event time, recent arrival) kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client

from adapters.retention import table_retention
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import MIGRATIONS_TABLE
from adapters.warehouse.retention import apply_table_retention, table_ttls
from adapters.warehouse.writer import BatchWriter
from tickwave.config import Settings, load_settings
from tickwave.contracts import Tick
from tickwave.warehouse.tables import TICKS, row_for


def test_ticks_when_event_time_years_old_then_kept_after_ttl_merge(warehouse: Client) -> None:
    old = Tick(symbol="RETENTION", time_ms=1_420_070_400_000, seq=0, bid=1.2, ask=1.2002)  # 2015-01-01
    with BatchWriter(warehouse, TICKS) as writer:
        writer.write([row_for(old)])

    warehouse.command("OPTIMIZE TABLE ticks FINAL")

    rows = warehouse.query("SELECT count() FROM ticks FINAL WHERE symbol = 'RETENTION'").result_rows
    assert rows == [(1,)]


def retention(settings: Settings, **section: object) -> Settings:
    return load_settings(state_dir=settings.state_dir, retention=section)


@pytest.fixture(scope="module")
def retained(warehouse_settings: Settings, migrated_database: str) -> tuple[str, list[str]]:
    """The session's migrated database with the default retention applied (as `tickwave up` does): the TTLs set."""
    client = connect(warehouse_settings, database=migrated_database)
    try:
        return migrated_database, apply_table_retention(client, migrated_database, warehouse_settings)
    finally:
        client.close()


@pytest.fixture
def client(warehouse_settings: Settings, retained: tuple[str, list[str]]) -> Iterator[Client]:
    """A client of the module's database; the default retention is restored after the test."""
    client = connect(warehouse_settings, database=retained[0])
    try:
        yield client
    finally:
        apply_table_retention(client, retained[0], warehouse_settings)
        client.close()


def test_apply_table_retention_when_migrated_then_every_table_has_the_retention_tables_ttl_in_its_ddl(
    warehouse_settings: Settings, retained: tuple[str, list[str]], client: Client
) -> None:
    database, changed = retained

    ddl = table_ttls(client, database)
    show = client.command("SHOW CREATE TABLE orders")
    again = apply_table_retention(client, database, warehouse_settings)

    expected = {rule.table: rule.ttl for rule in table_retention(warehouse_settings.retention)}
    assert len(changed) == 6  # the five compliance tables with a TTL and pipeline_runs had none in the migrations
    assert {name: ttl for name, ttl in ddl.items() if name != MIGRATIONS_TABLE} == expected
    assert ddl[MIGRATIONS_TABLE] is None
    assert "TTL toDateTime(inserted_at) + toIntervalDay(1827)" in str(show)
    assert again == []  # nothing differs: nothing altered


def test_apply_table_retention_when_settings_change_then_the_ddl_follows_and_forever_removes_the_ttl(
    warehouse_settings: Settings, retained: tuple[str, list[str]], client: Client
) -> None:
    database, _ = retained
    longer = retention(warehouse_settings, compliance_days=2557, table_days={"ticks": 30, "bars_1m": 3650})

    changed = apply_table_retention(client, database, longer)
    after = table_ttls(client, database)
    restored = apply_table_retention(client, database, warehouse_settings)
    back = table_ttls(client, database)

    assert after["ticks"] == "toDateTime(inserted_at) + toIntervalDay(30)"
    assert after["bars_1m"] == "toDateTime(inserted_at) + toIntervalDay(3650)"
    assert after["fills"] == "toDateTime(inserted_at) + toIntervalDay(2557)"
    assert len(changed) == len(restored) == 7  # ticks, bars_1m and the five compliance tables with a TTL
    assert back["bars_1m"] is None  # kept forever again: REMOVE TTL


@pytest.mark.parametrize(
    ("table", "columns", "event_column"),
    [
        ("ticks", "symbol, time_ms, seq, bid, ask, last, volume, flags, source", "time_ms"),
        (
            "orders",
            "client_order_id, signal_id, symbol, side, quantity_lots, order_type, model_id, model_version, "
            "status, broker_order_id, filled_lots, reason, created_at_ms, updated_at_ms",
            "created_at_ms",
        ),
    ],
)
def test_ttl_when_rows_arrived_before_the_retention_then_a_merge_removes_only_them(
    warehouse_settings: Settings,
    retained: tuple[str, list[str]],
    client: Client,
    table: str,
    columns: str,
    event_column: str,
) -> None:
    database, _ = retained
    forever = retention(warehouse_settings, table_days={table: 0})
    one_day = retention(warehouse_settings, table_days={table: 1}, allow_short_compliance=True)
    now = datetime.now(UTC)
    old = now - timedelta(days=400)  # monthly partitions: each row in its own (whole parts expire)
    names = [name.strip() for name in columns.split(",")]
    key = "client_order_id" if table == "orders" else "symbol"
    apply_table_retention(client, database, forever)
    for label, event_at, arrived_at in (
        ("EXPIRED", old, old),  # arrived 400 days ago
        ("REPLAYED", old - timedelta(days=100), now),  # older market time, arrived now: kept
        ("LIVE", now, now),
    ):
        row = [label if name == key else _value(name, event_at) for name in names]
        client.insert(table, [[*row, arrived_at]], column_names=[*names, "inserted_at"])
    mine = f"{key} IN ('EXPIRED', 'REPLAYED', 'LIVE')"  # the session's database holds other tests' rows
    before = client.query(f"SELECT {key} FROM {table} WHERE {mine} ORDER BY {key}").result_rows

    apply_table_retention(client, database, one_day)
    client.command(f"OPTIMIZE TABLE {table} FINAL")
    after = client.query(
        f"SELECT {key}, {event_column} < now() - INTERVAL 1 DAY FROM {table} WHERE {mine} ORDER BY {key}"
    )

    assert [row[0] for row in before] == ["EXPIRED", "LIVE", "REPLAYED"]
    assert [tuple(row) for row in after.result_rows] == [("LIVE", False), ("REPLAYED", True)]


def _value(name: str, at: datetime) -> object:
    if name.endswith("_ms"):
        return at
    if name in ("seq", "flags", "model_version"):
        return 1
    if name in ("bid", "ask", "last", "volume", "quantity_lots", "filled_lots"):
        return 1.0
    return "x"  # the other strings
