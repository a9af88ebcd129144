"""Compliance reports benchmark: a day of 100k orders and 1M order events, produced and verified, same run.

1. starts its own warehouse (free loopback port, temporary state dir), writes a synthetic
   day (``testkit.synthetic_day``: ticks, bars, features, predictions, signals, orders,
   fills) and replaces its order events by ~1M *chained* ones, built as the execution
   process journals them (contract messages, links of ``tickwave.audit_chain`` over their
   bytes, rows from the audit loader's row builder): per order a submission, an
   acceptance and nine partial fills (a rejection for the rejected ones);
2. times ``tickwave report daily``'s work: the dbt compliance views (with the marts they
   read) and the seven reports, manifest and index; then the same again (the re-run,
   byte-identical);
3. times ``tickwave report verify`` for the day (every link recomputed, every typed
   column compared with its payload, every file hashed, chain heads and source counts);
4. the baseline, same run: a plain CSV export of ``order_events`` (what a user would
   pull by hand) and a SHA-256 of it.

Targets: reports under 60 s and verify under 30 s. Each figure is also given as a
ratio to the baseline of the same run, which carries the machine's load with it.

The benchmark's warehouse runs at the production niceness (``clickhouse.nice``, 10: the
warehouse yields to the hot path), so on a quiet machine it measures what a user gets. On
a shared machine a warehouse at 10 measures the other processes' load, not the reports
(seen: the same day 66 s at load 7.7 and 205 s at load 15); ``--warehouse-nice 0`` then
shows what the code itself costs (say so beside the figure).

    .venv/bin/python -m bench.reports [--orders 100000] [--fills-per-order 9] [--warehouse-nice 10]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, this folder comes first on sys.path and this file would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from adapters.endpoints import Endpoint  # noqa: E402
from adapters.warehouse.client import connect  # noqa: E402
from adapters.warehouse.migrate import migrate  # noqa: E402
from adapters.warehouse.writer import BatchWriter, WriterConfig  # noqa: E402
from app.services.supervisor import Supervisor  # noqa: E402
from app.services.warehouse import WarehouseService  # noqa: E402
from bench.summary import record  # noqa: E402
from execution.audit import order_event_row  # noqa: E402
from orchestration.compliance_views import build_compliance_views  # noqa: E402
from reports.daily import generate_day  # noqa: E402
from reports.verify import verify  # noqa: E402
from testkit.synthetic_day import write_synthetic_day  # noqa: E402
from tickwave.audit_chain import AuditChain  # noqa: E402
from tickwave.config import Settings, load_settings  # noqa: E402
from tickwave.contracts import OrderAccepted, OrderFilled, OrderRejected, OrderSubmitted, encode  # noqa: E402
from tickwave.warehouse.tables import ORDER_EVENTS  # noqa: E402

console = Console()
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def chained_events(settings: Settings, database: str, fills_per_order: int) -> int:
    """Replace the synthetic day's order events by chained ones (as execution journals them); return how many."""
    client = connect(settings, database=database)
    client.command("TRUNCATE TABLE order_events")
    orders = client.query(
        "SELECT client_order_id, signal_id, symbol, side, quantity_lots, status, broker_order_id, "
        "ifNull(average_fill_price, 0), toUnixTimestamp64Milli(created_at_ms) FROM orders FINAL "
        "ORDER BY created_at_ms, client_order_id"
    ).result_rows
    chain = AuditChain("execution-1")
    writer = BatchWriter(client, ORDER_EVENTS, WriterConfig(max_rows=100_000, max_buffered_rows=400_000))
    count = 0
    for client_order_id, signal_id, symbol, side, lots, status, broker_order_id, price, at_ms in orders:
        common = {
            "client_order_id": client_order_id,
            "signal_id": signal_id,
            "symbol": symbol,
            "model_id": "xgb_direction",
            "model_version": 1,
        }
        events: list[OrderSubmitted | OrderAccepted | OrderFilled | OrderRejected] = [
            OrderSubmitted(**common, event_at_ms=at_ms, side=side, quantity_lots=lots, order_type="market"),
            OrderAccepted(**common, event_at_ms=at_ms + 1, broker_order_id=broker_order_id or "b"),
        ]
        if status == "rejected":
            events.append(OrderRejected(**common, event_at_ms=at_ms + 3, reason="no money", broker_code=10019))
        else:
            step = lots / fills_per_order
            for number in range(1, fills_per_order + 1):
                fill_id = f"{client_order_id}-{number}"
                events.append(
                    OrderFilled(
                        **common,
                        event_at_ms=at_ms + 2 + number,
                        fill_id=fill_id,
                        fill_price=price,
                        fill_lots=step,
                        cumulative_lots=step * number,
                        is_final=number == fills_per_order,
                    )
                )
        rows = []
        for event in events:
            row = order_event_row(event, chain.add(encode(event)))
            rows.append(row)
        writer.write(rows)
        count += len(rows)
    writer.close()
    client.close()
    return count


def timed(what: str, action):  # type: ignore[no-untyped-def]
    with console.status(what):
        begun = time.perf_counter()
        result = action()
        return time.perf_counter() - begun, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--fills-per-order", type=int, default=9)
    parser.add_argument("--warehouse-nice", type=int, default=10, help="the warehouse's niceness (production: 10)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tickwave-bench-reports-") as state:
        settings = load_settings(
            state_dir=Path(state), clickhouse={"port": 0, "native_port": 0, "nice": options.warehouse_nice}
        )
        supervisor, service = Supervisor(settings), WarehouseService(settings)
        started = supervisor.start(service)
        assert isinstance(started, Endpoint)
        try:
            run(load_settings(state_dir=Path(state)), options.orders, options.fills_per_order, Path(state))
        finally:
            supervisor.stop(service)


def run(settings: Settings, orders: int, fills_per_order: int, state: Path) -> None:
    load_before = os.getloadavg()
    database = f"bench_{uuid.uuid4().hex[:8]}"
    migrate(settings, database=database)
    client = connect(settings, database=database)
    write_synthetic_day(client, DAY, 2 * orders, orders)
    client.close()
    seconds, events = timed(
        "chaining ~1M order events as execution journals them...",
        lambda: chained_events(settings, database, fills_per_order),
    )
    console.print(f"day: {orders:,} orders, {events:,} chained order events (written in {seconds:.1f} s, untimed)")
    root = state / "reports"
    client = connect(settings, database=database)
    try:
        build_s, _ = timed(
            "dbt: compliance views and their marts...", lambda: build_compliance_views(settings, database)
        )
        write_s, outcome = timed("writing the seven reports...", lambda: generate_day(client, DAY.date(), root))
        rerun_s, again = timed("re-run...", lambda: generate_day(client, DAY.date(), root))
        verify_s, problems = timed("verify...", lambda: verify(client, root, DAY.date()))
        export = state / "order_events.csv"

        def plain_export() -> str:
            export.write_bytes(
                client.raw_query("SELECT * FROM order_events FINAL ORDER BY event_at_ms, event_id", fmt="CSVWithNames")
            )
            return hashlib.sha256(export.read_bytes()).hexdigest()

        export_s, _ = timed("baseline: plain CSV export + SHA-256...", plain_export)
    finally:
        client.close()
    assert not problems, problems
    assert again.is_rerun and not again.changed, again.changed
    load_after = os.getloadavg()
    table = Table(title=f"compliance reports: {orders:,} orders, {events:,} order events")
    for column in ("step", "seconds", "target", "note"):
        table.add_column(column)
    total = build_s + write_s
    load = f"load {load_before[0]:.1f}-{load_after[0]:.1f}"
    daily_is_met, verify_is_met = total < 60, verify_s < 30
    table.add_row(
        "report daily (dbt views + 7 reports + manifest)",
        f"{total:.1f}",
        "< 60 s",
        f"dbt {build_s:.1f} s + files {write_s:.1f} s; {total / export_s:.1f}x baseline; "
        f"{'met' if daily_is_met else 'MISSED'}",
    )
    table.add_row(
        "re-run (byte-identical, no dbt)", f"{rerun_s:.1f}", "-", f"same files; {rerun_s / export_s:.1f}x baseline"
    )
    table.add_row(
        "report verify --date",
        f"{verify_s:.1f}",
        "< 30 s",
        f"{verify_s / export_s:.1f}x baseline; {'met' if verify_is_met else 'MISSED'}",
    )
    table.add_row(
        "baseline: plain CSV export of order_events + SHA-256",
        f"{export_s:.1f}",
        "-",
        f"{export.stat().st_size / 1e6:.0f} MB",
    )
    baseline = f"{export_s:.1f} s plain CSV export + SHA-256 ({load})"
    record(
        f"report daily, {orders:,} orders",
        round(total, 1),
        "s",
        baseline=baseline,
        target="< 60 s",
        is_met=daily_is_met,
    )
    record(f"report daily re-run, {orders:,} orders", round(rerun_s, 1), "s", baseline=baseline)
    record(
        f"report verify, {events:,} events",
        round(verify_s, 1),
        "s",
        baseline=baseline,
        target="< 30 s",
        is_met=verify_is_met,
    )
    record("baseline: plain CSV export of order_events + SHA-256", round(export_s, 1), "s", baseline=load)
    console.print(table)
    rows = sum(rows for _, rows in outcome.files.values())
    console.print(
        f"files: {len(outcome.files)} ({rows:,} CSV rows); load average before "
        f"{load_before[0]:.1f}, after {load_after[0]:.1f} (1 min)"
    )


if __name__ == "__main__":
    main()
