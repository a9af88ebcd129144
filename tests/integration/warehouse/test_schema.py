"""Migrations, the tables they create, and every contract's round trip through the writer."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import Migration, apply_migrations, load_migrations
from adapters.warehouse.writer import BatchWriter
from tickwave.config import Settings
from tickwave.contracts import (
    Bar,
    DeadLetter,
    FeatureVector,
    Fill,
    Message,
    OrderFilled,
    OrderSubmitted,
    Prediction,
    RiskEvent,
    Signal,
    Tick,
)
from tickwave.errors import ConfigurationError
from tickwave.timeframes import TIMEFRAMES_MS
from tickwave.warehouse.tables import TABLES, table_for

NOW_MS = int(time.time() * 1000) // 1000 * 1000
REQUIRED_TABLES = {
    "ticks",
    "bars_1s",
    "bars_1m",
    "features",
    "predictions",
    "signals",
    "orders",
    "order_events",
    "fills",
    "fill_positions",
    "fill_positions_daily",
    "risk_events",
    "model_registry",
    "model_registry_events",
    "dq_results",
    "quarantine",
    "schema_migrations",
    "service_events",
    "pipeline_runs",
    "model_drift",
    "bars_5m",
    "bars_15m",
    "bars_30m",
    "bars_1h",
    "bars_4h",
    "bars_1d",
}
ARROW_TO_CLICKHOUSE = {
    "string": "String",
    "timestamp[ms, tz=UTC]": "DateTime64(3, 'UTC')",
    "uint32": "UInt32",
    "uint64": "UInt64",
    "int32": "Int32",
    "double": "Float64",
    "bool": "Bool",
    "map<string, double>": "Map(String, Float64)",
    "map<string, string>": "Map(String, String)",
    "list<item: string>": "Array(String)",
    "decimal128(18, 8)": "Decimal(18, 8)",
    "decimal128(38, 18)": "Decimal(38, 18)",
}


def _unwrapped(clickhouse_type: str) -> str:
    """Drop LowCardinality(...) and Nullable(...) wrappers: the writer's Arrow types carry neither."""
    previous = None
    while previous != clickhouse_type:
        previous, clickhouse_type = (
            clickhouse_type,
            re.sub(r"(?:LowCardinality|Nullable)\(((?:[^()]|\([^()]*\))*)\)", r"\1", clickhouse_type),
        )
    return clickhouse_type


def test_migrate_when_run_twice_then_second_run_applies_nothing(
    warehouse_settings: Settings, fresh_database: str
) -> None:
    client = connect(warehouse_settings, database="default")
    try:
        first = apply_migrations(client, fresh_database, load_migrations())
        second = apply_migrations(client, fresh_database, load_migrations())
        tables = {row[0] for row in client.query(f"SHOW TABLES FROM {fresh_database}").result_rows}
        recorded = client.query("SELECT version, name FROM schema_migrations FINAL ORDER BY version").result_rows
    finally:
        client.close()

    assert first == [migration.label for migration in load_migrations()]
    assert second == []
    assert REQUIRED_TABLES <= tables
    assert [version for version, _ in recorded] == [migration.version for migration in load_migrations()]


def test_migrate_when_an_applied_file_changed_then_refused(warehouse_settings: Settings, fresh_database: str) -> None:
    client = connect(warehouse_settings, database="default")
    migrations = load_migrations()
    edited = [
        Migration(migrations[0].version, migrations[0].name, migrations[0].sql + "\n-- edited\n"),
        *migrations[1:],
    ]
    try:
        apply_migrations(client, fresh_database, migrations)
        with pytest.raises(ConfigurationError, match="changed after it was applied"):
            apply_migrations(client, fresh_database, edited)
    finally:
        client.close()


def test_tables_when_migrated_then_columns_match_the_writer_schemas(warehouse: Client) -> None:
    mismatches = {}
    for table in TABLES.values():
        described = warehouse.query(f"DESCRIBE TABLE {table.name}").result_rows
        actual = {name: _unwrapped(kind) for name, kind, *_ in described if name != "inserted_at"}
        expected = {field.name: ARROW_TO_CLICKHOUSE[str(field.type)] for field in table.schema}
        if actual != expected:
            mismatches[table.name] = (expected, actual)

    assert not mismatches, mismatches


def sample_messages(symbol: str) -> list[Message]:
    bar = {f"{side}_{point}": 1.1 for side in ("bid", "ask", "mid") for point in ("open", "high", "low", "close")}
    signal_id = Signal.make_id("m1", 3, symbol, "1m", NOW_MS)
    common = {
        "client_order_id": "tw-" + uuid.uuid4().hex[:20],
        "signal_id": signal_id,
        "symbol": symbol,
        "model_id": "m1",
        "model_version": 3,
    }
    return [
        Tick(symbol=symbol, time_ms=NOW_MS, seq=1, bid=1.1, ask=1.1002, last=1.1001, volume=2.0, flags=6, source="t"),
        Bar(
            symbol=symbol,
            timeframe="1s",
            start_ms=NOW_MS,
            end_ms=NOW_MS + 1000,
            tick_count=4,
            volume=1.0,
            spread_mean=0.0002,
            spread_max=0.0003,
            **bar,
        ),
        Bar(
            symbol=symbol,
            timeframe="1m",
            start_ms=NOW_MS,
            end_ms=NOW_MS + 60_000,
            tick_count=9,
            volume=3.0,
            spread_mean=0.0002,
            spread_max=0.0004,
            **bar,
        ),
        *(
            Bar(
                symbol=symbol,
                timeframe=timeframe,
                start_ms=NOW_MS,
                end_ms=NOW_MS + length,
                tick_count=9,
                volume=3.0,
                spread_mean=0.0002,
                spread_max=0.0004,
                **bar,
            )
            for timeframe, length in TIMEFRAMES_MS.items()
            if timeframe not in ("1s", "1m")
        ),
        FeatureVector(
            symbol=symbol,
            timeframe="1m",
            bar_start_ms=NOW_MS,
            values={"ema_12": 1.1, "rsi_14": None},
            is_warm=False,
            schema_hash="abc",
        ),
        Prediction(
            symbol=symbol,
            timeframe="1m",
            bar_start_ms=NOW_MS,
            model_id="m1",
            model_version=3,
            probabilities={"up": 0.6, "down": 0.4},
            inference_latency_us=21.0,
            predicted_at_ms=NOW_MS + 5,
            confidence=0.42,
            members=("xgboost:0.6", "lightgbm:0.4"),
        ),
        Signal(
            signal_id=signal_id,
            symbol=symbol,
            timeframe="1m",
            bar_start_ms=NOW_MS,
            direction="long",
            strength=0.5,
            confidence=0.42,
            model_id="m1",
            model_version=3,
            created_at_ms=NOW_MS + 6,
            members=("xgboost:0.6", "lightgbm:0.4"),
        ),
        OrderSubmitted(**common, event_at_ms=NOW_MS + 7, side="buy", quantity_lots=0.1, order_type="market"),
        OrderFilled(
            **common,
            event_at_ms=NOW_MS + 9,
            fill_id="f1",
            fill_price=1.1003,
            fill_lots=0.1,
            cumulative_lots=0.1,
            is_final=True,
        ),
        Fill(
            fill_id="f1",
            client_order_id=common["client_order_id"],
            signal_id=signal_id,
            symbol=symbol,
            side="buy",
            price=1.1003,
            quantity_lots=0.1,
            commission=0.7,
            filled_at_ms=NOW_MS + 9,
            model_id="m1",
            model_version=3,
            position_before_lots=Decimal("0.2"),
            position_after_lots=Decimal("0.1"),
            entry_value_after=Decimal("0.11002"),
            realized_pnl_quote=Decimal("0.00000000000000001"),
            realized_pnl_account=None,
            round_trip_id="f0",
            opens_round_trip_id="",
        ),
        RiskEvent(
            risk_event_id=uuid.uuid4().hex,
            kind="drawdown",
            severity="warning",
            trading_state="REDUCING",
            detail="daily loss 2%",
            occurred_at_ms=NOW_MS + 10,
            symbol=symbol,
            check="max_daily_loss",
        ),
        DeadLetter(
            source="mt5", reason="ask below bid", raw='{"bid": 2, "ask": 1}', received_at_ms=NOW_MS, symbol=symbol
        ),
    ]


def test_contracts_when_written_through_writers_then_read_back_in_their_tables(warehouse: Client) -> None:
    symbol = "RT" + uuid.uuid4().hex[:6].upper()
    messages = sample_messages(symbol)
    by_table: dict[str, list[Message]] = {}
    for message in messages:
        by_table.setdefault(table_for(message).name, []).append(message)

    for name, group in by_table.items():
        with BatchWriter(warehouse, TABLES[name]) as writer:
            writer.write_messages(group)
    counts = {
        name: warehouse.command(f"SELECT count() FROM {name} FINAL WHERE symbol = '{symbol}'") for name in by_table
    }
    tick_row = warehouse.query(f"SELECT time_ms, seq, flags, source FROM ticks WHERE symbol = '{symbol}'").result_rows[
        0
    ]
    features = warehouse.command(
        f"SELECT values['rsi_14'] IS NULL AND values['ema_12'] = 1.1 FROM features WHERE symbol = '{symbol}'"
    )
    event_types = warehouse.query(
        f"SELECT event_type, fill_price, side FROM order_events WHERE symbol = '{symbol}' ORDER BY event_at_ms"
    ).result_rows
    booked = warehouse.query(
        "SELECT toString(position_before_lots), toString(position_after_lots), toString(entry_value_after), "
        f"toString(realized_pnl_quote), realized_pnl_account, round_trip_id FROM fills WHERE symbol = '{symbol}'"
    ).result_rows
    dead_letter_id = warehouse.command(f"SELECT dead_letter_id FROM quarantine WHERE symbol = '{symbol}'")
    ensemble = warehouse.query(
        f"SELECT p.confidence, p.members, s.members FROM predictions AS p "
        f"JOIN signals AS s ON s.symbol = p.symbol WHERE p.symbol = '{symbol}'"
    ).result_rows

    assert counts == {name: len(group) for name, group in by_table.items()}
    assert int(tick_row[0].timestamp() * 1000) == NOW_MS and tick_row[1:] == (1, 6, "t")
    assert features == 1
    assert event_types == [("order_submitted.v1", None, "buy"), ("order_filled.v1", 1.1003, "")]
    assert booked == [("0.2", "0.1", "0.11002", "0.00000000000000001", None, "f0")]  # exact, as booked
    assert dead_letter_id == messages[-1].dead_letter_id  # type: ignore[attr-defined]
    assert ensemble == [(0.42, ["xgboost:0.6", "lightgbm:0.4"], ["xgboost:0.6", "lightgbm:0.4"])]


def test_orders_when_state_changes_then_argmax_and_final_give_the_latest(warehouse: Client) -> None:
    order_id = "tw-" + uuid.uuid4().hex[:20]
    table = TABLES["orders"]
    rows = [
        {
            "client_order_id": order_id,
            "symbol": "EURUSD",
            "status": status,
            "created_at_ms": NOW_MS,
            "updated_at_ms": NOW_MS + offset,
            "side": "buy",
            "quantity_lots": 0.1,
            "model_version": 1,
        }
        for offset, status in ((0, "submitted"), (5, "accepted"), (9, "filled"))
    ]
    with BatchWriter(warehouse, table) as writer:
        writer.write(rows[::-1])  # arrival order must not matter

    latest = warehouse.command(
        f"SELECT argMax(status, updated_at_ms) FROM orders WHERE client_order_id = '{order_id}' "
        "GROUP BY client_order_id"
    )
    final = warehouse.command(f"SELECT status FROM orders FINAL WHERE client_order_id = '{order_id}'")

    assert latest == final == "filled"


def test_cli_when_migrating_and_querying_then_commands_work(warehouse_settings: Settings) -> None:
    database = "cli_" + uuid.uuid4().hex[:8]
    env = {
        **os.environ,
        "TICKWAVE_STATE_DIR": str(warehouse_settings.state_path),
        "TICKWAVE_CLICKHOUSE_DATABASE": database,
    }
    tickwave = str(Path(sys.executable).with_name("tickwave"))
    migrated = subprocess.run([tickwave, "warehouse", "migrate"], env=env, capture_output=True, text=True, timeout=120)
    again = subprocess.run([tickwave, "warehouse", "migrate"], env=env, capture_output=True, text=True, timeout=120)
    queried = subprocess.run(
        [tickwave, "warehouse", "query", "SELECT count() AS n FROM ticks"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    refused = subprocess.run(
        [tickwave, "warehouse", "query", "DROP TABLE ticks"], env=env, capture_output=True, text=True, timeout=120
    )
    client = connect(warehouse_settings, database=database)
    try:  # two fills stored without the engine's booking, as an engine that predates it wrote them
        client.command(
            "INSERT INTO fills (fill_id, client_order_id, signal_id, symbol, side, price, quantity_lots, commission, "
            "filled_at_ms, model_id, model_version) VALUES ('f1', 'o1', 's1', 'EURUSD', 'buy', 1.1, 0.1, 0, "
            "'2026-10-05 01:00:00', 'm', 1), ('f2', 'o2', 's2', 'EURUSD', 'sell', 1.1, 0.1, 0, '2026-10-05 01:00:01', "
            "'m', 1)"
        )
        backfilled = subprocess.run(
            [tickwave, "warehouse", "backfill-bookings"], env=env, capture_output=True, text=True, timeout=120
        )
        trips = client.command("SELECT groupArray(round_trip_id) FROM (SELECT * FROM fills FINAL ORDER BY fill_id)")
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()

    assert migrated.returncode == 0, migrated.stderr
    assert "0001_market_data" in migrated.stdout
    assert "up to date" in again.stdout
    assert queried.returncode == 0 and "1 of 1 rows" in queried.stdout
    assert refused.returncode == 1 and "164" in refused.stderr
    assert backfilled.returncode == 0 and "EURUSD: booked 2 fills" in backfilled.stdout, backfilled.stderr
    assert trips == "['f1','f1']"  # one round trip, named by the fill that opened it
