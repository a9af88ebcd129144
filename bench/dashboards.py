"""Dashboards benchmark: every board query over a synthetic day, as the analyst over HTTP, p50/p95 per panel.

1. starts its own warehouse (free loopback port, temporary state dir) and writes a day ending
   now into a migrated database: ``testkit.synthetic_day`` (10M ticks, 100k orders by default)
   plus ``testkit.dashboard_sample`` (1 s bars from those ticks, quarantine, quality results, service
   events, Dagster runs);
2. runs every panel's and annotation's query, macros expanded as the ClickHouse plugin does
   (trader: last 1 h at a 5 s interval, symbol EURUSD; ops: last 6 h at 30 s), as the
   read-only analyst over HTTP with the plugin's settings, ``--runs`` times each after one
   warm-up, interleaved so load spikes spread over all panels;
3. beside them, in the same run: the floor (``SELECT 1``) and the raw-table queries a user
   would otherwise write (candles and ticks per second from the 10M raw ticks).

Targets: the trader board's slowest panel p95 under 100 ms, the ops board's under 250 ms.

    .venv/bin/python bench/dashboards.py [--ticks 10000000] [--orders 100000] [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, this folder comes first on sys.path and this file would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from adapters.endpoints import Endpoint  # noqa: E402
from adapters.warehouse.client import connect  # noqa: E402
from adapters.warehouse.migrate import migrate  # noqa: E402
from app.services.supervisor import Supervisor  # noqa: E402
from app.services.warehouse import WarehouseService  # noqa: E402
from bench.stats import percentile  # noqa: E402
from bench.summary import record  # noqa: E402
from dashboards.build import boards  # noqa: E402
from dashboards.gocheck import board_context  # noqa: E402
from dashboards.macros import expand  # noqa: E402
from dashboards.ops import OPS_BUDGET_MS  # noqa: E402
from dashboards.runner import AnalystRunner  # noqa: E402
from dashboards.trader import TRADER_BUDGET_MS  # noqa: E402
from testkit.dashboard_sample import write_sample  # noqa: E402
from tickwave.config import Settings, load_settings  # noqa: E402

console = Console(width=150)
# What a user would write without the pre-aggregated bars: the same panels from the raw ticks.
RAW_BASELINES = {
    "Price from raw ticks (1 s candles)": """SELECT toStartOfSecond(time_ms) AS time,
       argMin((bid + ask) / 2, time_ms) AS open, max((bid + ask) / 2) AS high, min((bid + ask) / 2) AS low,
       argMax((bid + ask) / 2, time_ms) AS close
FROM ticks FINAL WHERE symbol = '${symbol}' AND $__timeFilter(time_ms) GROUP BY time ORDER BY time""",
    "Ticks per second from raw ticks": """SELECT $__timeInterval(time_ms) AS time, symbol,
       count() / $__interval_s AS ticks_per_s
FROM ticks WHERE $__timeFilter(time_ms) GROUP BY time, symbol ORDER BY time""",
}


def load() -> str:
    """The machine's load averages (1, 5, 15 min)."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def run(settings: Settings, ticks: int, orders: int, runs: int) -> None:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    migrate(settings)  # the warehouse's own database, where its access log lands (retried while missing)
    migrate(settings, database=database)
    client = connect(settings, database=database)
    now = datetime.now(tz=UTC).replace(microsecond=0)
    begun = time.perf_counter()
    day = write_sample(client, ticks, orders, now=now)
    client.close()
    console.print(
        f"sample: {day.ticks:,} ticks, {day.orders:,} orders, {day.fills:,} fills in "
        f"{time.perf_counter() - begun:.1f} s; load {load()}"
    )

    queries: list[tuple[str, str, str, float]] = []  # board, title, sql, budget
    for board in boards(settings):
        context = board_context(board.uid, now, "EURUSD")
        queries += [(board.uid, spec.title, expand(spec.sql, context), spec.budget_ms) for spec in board.queries]
    trader_context = board_context("tickwave-trader", now, "EURUSD")
    ops_context = board_context("tickwave-ops", now, "EURUSD")
    baselines = [("baseline", "floor: SELECT 1", "SELECT 1", 0.0)] + [
        ("baseline", title, expand(sql, trader_context if "Price" in title else ops_context), 0.0)
        for title, sql in RAW_BASELINES.items()
    ]
    everything = queries + baselines
    runner = AnalystRunner(settings, database)
    timings: dict[str, list[float]] = {title: [] for _, title, _, _ in everything}
    engine: dict[str, list[float]] = {title: [] for _, title, _, _ in everything}
    load_before = load()
    try:
        for _, _, sql, _ in everything:
            runner.query(sql)  # warm-up: the policy's verdict cache, the engine's marks
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task("queries", total=runs * len(everything))
            for _ in range(runs):
                for _, title, sql, _ in everything:
                    answer = runner.query(sql)
                    timings[title].append(answer.elapsed_ms)
                    engine[title].append(answer.server_ms)
                    progress.advance(task)
    finally:
        runner.close()
    load_after = load()

    table = Table(
        "board",
        "panel",
        "p50 ms",
        "p95 ms",
        "engine p50 ms",
        "budget ms",
        title=f"{runs} runs each, as the analyst over HTTP",
    )
    for board_uid, title, _, budget in everything:
        values = timings[title]
        table.add_row(
            board_uid,
            title,
            f"{statistics.median(values):.1f}",
            f"{percentile(values, 0.95):.1f}",
            f"{statistics.median(engine[title]):.1f}",
            f"{budget:.0f}" if budget else "-",
        )
    console.print(table)
    for board_uid, target in (("tickwave-trader", TRADER_BUDGET_MS), ("tickwave-ops", OPS_BUDGET_MS)):
        slowest = max((percentile(timings[title], 0.95), title) for uid, title, _, _ in queries if uid == board_uid)
        verdict = "met" if slowest[0] < target else "MISSED"
        floor = percentile(timings["floor: SELECT 1"], 0.95)
        record(
            f"{board_uid}: slowest panel p95",
            slowest[0],
            "ms",
            baseline=f"SELECT 1 over HTTP: p95 {floor:.1f} ms",
            target=f"< {target:.0f} ms",
            is_met=slowest[0] < target,
        )
        console.print(
            f"{board_uid}: slowest panel p95 {slowest[0]:.1f} ms ({slowest[1]}) vs target < {target:.0f} ms: {verdict}"
        )
    console.print(f"load average before {load_before}, after {load_after} (1/5/15 min; 2 cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tickwave-bench-dash-") as state:
        settings = load_settings(state_dir=Path(state), clickhouse={"port": 0, "native_port": 0})
        supervisor, service = Supervisor(settings), WarehouseService(settings)
        started = supervisor.start(service)
        assert isinstance(started, Endpoint)
        try:
            run(load_settings(state_dir=Path(state)), options.ticks, options.orders, options.runs)
        finally:
            supervisor.stop(service)


if __name__ == "__main__":
    main()
