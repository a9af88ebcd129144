"""``execution_quality`` rebuilds only the month of the day it is run for, and that month equals a full rebuild.

Real dbt on the real warehouse. The October order submitted at midnight on the 1st has its last tick on
29 September, outside the month the incremental run rebuilds: only the arrival look-back finds its quote.
A September order written after the first build stays out of October's run (the run's work is the month,
not the history), also when the mart's table is still the unpartitioned one a table mart left. A GBPUSD
order whose last tick is older than the look-back has no arrival quote in either build.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from orchestration.dbt_project import run_dbt
from tickwave.config import Settings

COLUMNS = (
    "client_order_id, symbol, day, toString(submitted_at), toString(arrival_tick_at), arrival_mid, fill_price, "
    "slippage_pips, slippage_bps, spread_paid_pips, decision_to_fill_ms"
)
# (client_order_id, symbol, side, fill price, submitted at): each fills 20 ms after its submission
ORDERS = (
    ("sep-1", "EURUSD", "buy", 1.1002, "2026-09-10 12:00:00.000"),
    ("oct-1", "EURUSD", "sell", 1.0995, "2026-10-01 00:00:05.000"),
    ("oct-2", "EURUSD", "buy", 1.1012, "2026-10-02 09:00:00.000"),
    ("oct-stale", "GBPUSD", "buy", 1.2701, "2026-10-20 09:00:00.000"),
)
LATE = ("sep-late", "EURUSD", "sell", 1.0999, "2026-09-15 08:00:00.000")
# (symbol, time, bid, ask): EURUSD's last tick before oct-1 is two days before it, in September
TICKS = (
    ("EURUSD", "2026-09-10 11:59:59.000", 1.0999, 1.1000),
    ("EURUSD", "2026-09-15 07:59:00.000", 1.0998, 1.1000),
    ("EURUSD", "2026-09-29 21:00:00.000", 1.0997, 1.0999),
    ("EURUSD", "2026-10-01 10:00:00.000", 1.2000, 1.2002),
    ("EURUSD", "2026-10-02 08:59:59.500", 1.1009, 1.1010),
    ("GBPUSD", "2026-10-05 09:00:00.000", 1.2699, 1.2700),
)


def write_order(client: Client, order: tuple[str, str, str, float, str]) -> None:
    """One market order of 0.1 lots: its row, its submission and its final fill 20 ms later."""
    cid, symbol, side, price, submitted = order
    at = f"toDateTime64('{submitted}', 3, 'UTC')"
    client.command(
        "INSERT INTO orders (client_order_id, signal_id, symbol, side, quantity_lots, order_type, model_id, "
        "model_version, status, filled_lots, average_fill_price, created_at_ms, updated_at_ms) "
        f"SELECT '{cid}', 's-{cid}', '{symbol}', '{side}', 0.1, 'market', 'm', 1, 'filled', 0.1, {price}, "
        f"{at}, {at} + INTERVAL 20 MILLISECOND"
    )
    client.command(
        "INSERT INTO order_events (event_id, event_type, client_order_id, signal_id, symbol, model_id, "
        "model_version, event_at_ms, side, is_final) "
        f"SELECT '{cid}-s', 'order_submitted.v1', '{cid}', 's-{cid}', '{symbol}', 'm', 1, {at}, '{side}', NULL "
        f"UNION ALL SELECT '{cid}-f', 'order_filled.v1', '{cid}', 's-{cid}', '{symbol}', 'm', 1, "
        f"{at} + INTERVAL 20 MILLISECOND, '{side}', true"
    )


def unpartition(client: Client) -> None:
    """Replace the mart with an unpartitioned copy of itself, the table the mart was before it was incremental."""
    client.command(
        "CREATE TABLE execution_quality_copy ENGINE = MergeTree() ORDER BY (symbol, submitted_at, client_order_id) "
        "AS SELECT * FROM execution_quality"
    )
    client.command("EXCHANGE TABLES execution_quality AND execution_quality_copy")
    client.command("DROP TABLE execution_quality_copy")


def build(settings: Settings, database: str, *arguments: str, day: str | None = None) -> None:
    variables = {"partition_day": day} if day else None
    done = run_dbt(settings, ["run", *arguments], database, timeout_s=600, variables=variables)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def rows(client: Client, where: str = "1") -> Sequence[Sequence[Any]]:
    return client.query(f"SELECT {COLUMNS} FROM execution_quality WHERE {where} ORDER BY client_order_id").result_rows


def test_execution_quality_when_a_month_is_rebuilt_then_it_equals_a_full_rebuild_and_leaves_other_months(
    warehouse_settings: Settings, fresh_database: str
) -> None:
    migrate(warehouse_settings, database=fresh_database)
    client = connect(warehouse_settings, database=fresh_database)
    try:
        # Arrange: the orders and ticks, and a first (full) build of the mart and what it reads
        for order in ORDERS:
            write_order(client, order)
        ticks = [[symbol, datetime.fromisoformat(at).replace(tzinfo=UTC), bid, ask] for symbol, at, bid, ask in TICKS]
        client.insert("ticks", ticks, column_names=["symbol", "time_ms", "bid", "ask"])
        build(warehouse_settings, fresh_database, "--select", "+execution_quality")
        first = rows(client)
        write_order(client, LATE)
        unpartition(client)  # as a deployed warehouse has it from before the mart was incremental

        # Act: October's partition, as the daily job runs it (fct_orders rebuilt first, as the marts job does)
        build(warehouse_settings, fresh_database, "--select", "fct_orders", "execution_quality", day="2026-10-01")
        incremental = rows(client)
        partition_key = client.command(
            "SELECT partition_key FROM system.tables "
            f"WHERE database = '{fresh_database}' AND name = 'execution_quality'"
        )
    finally:
        client.close()

    # Assert
    assert [row[0] for row in first] == ["oct-1", "oct-2", "sep-1"]  # oct-stale: no quote within the look-back
    assert first[0][4] == "2026-09-29 21:00:00.000"  # oct-1's arrival quote lies before the month rebuilt
    assert incremental == first  # October as the full build had it; September untouched (no sep-late)
    assert partition_key == "toYYYYMM(day)"  # the unpartitioned table was copied into monthly partitions first
