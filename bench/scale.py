"""Scale benchmark: the warehouse grown to 1M, 10M, 100M ticks, and what each size costs the people using it.

1. starts its own warehouse (free loopback port, temporary state dir) and grows one migrated
   database size by size: 10 symbols at a quiet desk's rate (150M ticks a year, about 411,000
   a day), ending a few hours before now, so a bigger size is a longer history. Each step is
   written through the warehouse's bulk path as the service user (``INSERT ... SELECT`` from
   generators on the server, ``testkit.synthetic_day``): ticks, bars at every timeframe of
   ``tickwave.timeframes``, features, predictions, signals, orders, fills and order events in
   the synthetic day's proportions (one order per ~1,000 ticks);
2. at each size, once the warehouse has merged the parts just written and idles, as the
   analyst where a person would: every trader and ops board panel (p50/p95 of 20 runs,
   macros expanded as the ClickHouse plugin does, with ``now`` at the data's end),
   the full ``dbt build`` (untimed against a target: the history changed), then one more hour
   of data and the incremental build the Dagster jobs run (the marts, then the daily marts'
   partition of that day), ``execution_quality`` rebuilt in full beside it (the work each build
   did before the mart was incremental), the day's compliance reports (``tickwave report daily``'s work), the
   training read (three months of 1m features and bars for the 10 symbols), ``tickwave status``,
   and disk per table and per million ticks (``system.parts``);
3. writes ``bench/results/scale.json`` and the curves ``bench/results/scale_*.png``.

Targets at 100M ticks: trader panels p95 < 100 ms, ops < 300 ms, incremental dbt < 60 s, the
day's reports < 60 s, and no work over a fixed window growing with the table.

    .venv/bin/python -m bench.scale [--quick] [--sizes 1000000 10000000 100000000] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path and this file would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from rich.console import Console  # noqa: E402
from rich.progress import Progress  # noqa: E402
from rich.table import Table  # noqa: E402

from bench.stats import percentile  # noqa: E402
from tickwave.timeframes import TIMEFRAMES  # noqa: E402

console = Console(width=150)
RESULTS = Path(__file__).resolve().parent / "results"
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TICKS_PER_YEAR = 150_000_000  # 10 symbols at a quiet desk's rate
TICKS_PER_DAY = 411_000  # TICKS_PER_YEAR / 365, a multiple of the symbol count
TICKS_PER_ORDER = 1_000
SETTLE_WAIT_S = 900.0  # the longest wait for the warehouse to settle after a size is written
SETTLE_POLL_S = 2.0
IDLE_CORES = 0.1
CHUNK_DAYS = 7  # one write covers at most a week (progress, and the server's memory per statement)
QUICK = (1_000_000, 10_000_000)
FULL = (1_000_000, 10_000_000, 100_000_000)
# symbol -> (base mid, quoted digits, pip size, spread in pips): each trades USD (the synthetic day books P&L in USD).
SYMBOLS: dict[str, tuple[float, int, float, float]] = {
    "EURUSD": (1.08500, 5, 0.0001, 1.2),
    "GBPUSD": (1.27000, 5, 0.0001, 1.5),
    "AUDUSD": (0.66000, 5, 0.0001, 1.4),
    "NZDUSD": (0.60000, 5, 0.0001, 1.8),
    "USDJPY": (151.250, 3, 0.01, 1.4),
    "USDCHF": (0.88000, 5, 0.0001, 1.6),
    "USDCAD": (1.36000, 5, 0.0001, 1.7),
    "XAUUSD": (2350.00, 2, 0.1, 2.5),
    "XAGUSD": (28.0000, 3, 0.01, 3.0),
    "US500": (5200.00, 1, 0.1, 5.0),
}


@dataclass(frozen=True)
class Chunk:
    """One bulk write: ``ticks`` ticks and ``orders`` orders spread over ``[start_ms, start_ms + span_ms)``."""

    start_ms: int
    span_ms: int
    ticks: int
    orders: int


def _multiple(value: float, step: int) -> int:
    return max(step, round(value / step) * step)


def span_ms(ticks: int) -> int:
    """How long the history of ``ticks`` ticks lasts at the desk's rate, in whole minutes."""
    return _multiple(ticks * DAY_MS / TICKS_PER_DAY, 60_000)


def orders_for(ticks: int) -> int:
    """Orders in the same proportion as the synthetic day's, a multiple of twice the symbol count."""
    return _multiple(ticks / TICKS_PER_ORDER, 2 * len(SYMBOLS))


def backfill(previous_ticks: int, ticks: int, end_ms: int) -> list[Chunk]:
    """The chunks that grow a history ending at ``end_ms`` from ``previous_ticks`` to ``ticks`` (older data)."""
    older_start, newer_start = end_ms - span_ms(ticks), end_ms - span_ms(previous_ticks) if previous_ticks else end_ms
    total_ms, added = newer_start - older_start, ticks - previous_ticks
    pieces = max(1, -(-total_ms // (CHUNK_DAYS * DAY_MS)))
    piece_ms = _multiple(total_ms / pieces, 60_000)
    chunks, start, left = [], older_start, added
    for number in range(pieces):
        length = piece_ms if number < pieces - 1 else newer_start - start
        share = left if number == pieces - 1 else _multiple(added * length / total_ms, len(SYMBOLS))
        chunks.append(Chunk(start, length, share, orders_for(share)))
        start, left = start + length, left - share
    return chunks


def one_more_hour(start_ms: int) -> Chunk:
    """An hour of data at the desk's rate from ``start_ms``."""
    ticks = _multiple(TICKS_PER_DAY / 24, len(SYMBOLS))
    return Chunk(start_ms, HOUR_MS, ticks, orders_for(ticks))


def write_chunk(client: Any, chunk: Chunk, alignment: Any) -> None:
    """Write ``chunk`` through the bulk path: every table, bars at every timeframe."""
    from testkit.synthetic_day import write_synthetic_day

    day = datetime.fromtimestamp(chunk.start_ms / 1000, tz=UTC)
    write_synthetic_day(
        client,
        day,
        chunk.ticks,
        chunk.orders,
        span_ms=chunk.span_ms,
        symbols=SYMBOLS,
        timeframes=TIMEFRAMES,
        alignment=alignment,
    )


def load() -> str:
    """The machine's load averages (1, 5, 15 min)."""
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    begun = time.perf_counter()
    result = action()
    return time.perf_counter() - begun, result


# --- the measurements, one size ----------------------------------------------------------


def measure_boards(settings: Any, database: str, now: datetime, runs: int) -> dict[str, dict[str, float]]:
    """Every panel and annotation query of the boards as the analyst: p50/p95 ms and its budget."""
    from dashboards.build import boards
    from dashboards.gocheck import board_context
    from dashboards.macros import expand
    from dashboards.runner import AnalystRunner

    queries = [("floor", "SELECT 1", "SELECT 1", 0.0)]
    for board in boards(settings):
        context = board_context(board.uid, now, "EURUSD")
        queries += [(board.uid, spec.title, expand(spec.sql, context), spec.budget_ms) for spec in board.queries]
    runner = AnalystRunner(settings, database)
    timings: dict[str, list[float]] = {f"{uid}: {title}": [] for uid, title, _, _ in queries}
    try:
        for _, _, sql, _ in queries:
            runner.query(sql)  # warm-up: the policy's verdict cache, the engine's marks
        for _ in range(runs):
            for uid, title, sql, _ in queries:
                timings[f"{uid}: {title}"].append(runner.query(sql).elapsed_ms)
    finally:
        runner.close()
    return {
        f"{uid}: {title}": {
            "p50_ms": statistics.median(timings[f"{uid}: {title}"]),
            "p95_ms": percentile(timings[f"{uid}: {title}"], 0.95),
            "budget_ms": budget,
        }
        for uid, title, _, budget in queries
    }


def dbt_build(settings: Any, database: str, target: Path, *selections: list[str]) -> dict[str, Any]:
    """Run ``dbt build`` once per selection (none: the whole project); the seconds, and the slowest nodes."""
    from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_environment
    from orchestration.defs.marts.assets import SCHEDULED_BUILD

    nodes: dict[str, float] = {}
    begun = time.perf_counter()
    for selection in selections or ([],):
        command = [
            DBT_EXECUTABLE,
            *SCHEDULED_BUILD,
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
        ]
        done = subprocess.run(
            [*command, "--quiet", *selection],
            env={**os.environ, **dbt_environment(settings, database)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"dbt build failed:\n{done.stdout[-3000:]}")
        for node in json.loads((target / "run_results.json").read_text())["results"]:
            nodes[node["unique_id"]] = nodes.get(node["unique_id"], 0.0) + node["execution_time"]
    seconds = time.perf_counter() - begun
    slowest = dict(sorted(nodes.items(), key=lambda item: -item[1])[:12])
    return {"s": seconds, "slowest_nodes_s": slowest}


def incremental_selections(day: date) -> tuple[list[str], list[str]]:
    """The two dbt invocations of the Dagster jobs: the marts, then the daily marts' partition of ``day``."""
    from orchestration.defs.marts.assets import DAILY_MARTS

    return (
        ["--exclude", DAILY_MARTS],
        ["--select", DAILY_MARTS, "--vars", f"{{partition_day: '{day}'}}"],
    )


def measure_reports(settings: Any, database: str, day: date, root: Path) -> dict[str, float]:
    from adapters.warehouse.client import connect
    from orchestration.compliance_views import build_compliance_views
    from reports.daily import generate_day

    views_s, _ = timed(lambda: build_compliance_views(settings, database))
    client = connect(settings, database=database)
    try:
        files_s, _ = timed(lambda: generate_day(client, day, root))
    finally:
        client.close()
    return {"views_s": views_s, "files_s": files_s, "total_s": views_s + files_s}


def measure_training_read(settings: Any, database: str, end_ms: int) -> dict[str, float]:
    from adapters.warehouse.client import connect
    from models.dataset import query_bars, query_features

    range_ms = (end_ms - 90 * DAY_MS, end_ms)
    client = connect(settings, database=database)
    try:
        features_s, features = timed(
            lambda: query_features(client, list(SYMBOLS), "1m", range_ms, ["ret_1", "spread", "range"])
        )
        bars_s, bars = timed(lambda: query_bars(client, list(SYMBOLS), "1m", range_ms))
    finally:
        client.close()
    return {"features_s": features_s, "bars_s": bars_s, "rows": float(len(features)), "bar_rows": float(len(bars))}


def measure_status(state: Path, database: str) -> float:
    tickwave = str(Path(sys.executable).with_name("tickwave"))
    environment = {**os.environ, "TICKWAVE_STATE_DIR": str(state), "TICKWAVE_CLICKHOUSE_DATABASE": database}
    seconds, _ = timed(
        lambda: subprocess.run([tickwave, "status"], env=environment, capture_output=True, check=False, timeout=300)
    )
    return seconds


def measure_disk(settings: Any, database: str) -> dict[str, dict[str, float]]:
    from adapters.warehouse.client import connect

    client = connect(settings, database=database)
    try:
        rows = client.query(
            "SELECT table, sum(rows), sum(bytes_on_disk), count() FROM system.parts "
            "WHERE active AND database = {database:String} GROUP BY table ORDER BY sum(bytes_on_disk) DESC",
            parameters={"database": database},
        ).result_rows
    finally:
        client.close()
    return {
        table: {"rows": float(count), "bytes": float(size), "parts": float(parts)} for table, count, size, parts in rows
    }


# --- the run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Warehouse:
    """Where the run writes and reads: settings, database, state dir, the bars' alignment, the server's pid."""

    settings: Any
    database: str
    state: Path
    alignment: Any
    pid: int


def step(result: dict[str, Any], name: str, what: str, action: Callable[[], Any]) -> None:
    """Run one measurement into ``result[name]``; a failure is recorded and the run goes on."""
    with console.status(what):
        try:
            result[name] = action()
        except Exception as error:  # the loop's outer edge: recorded in the results and printed
            result["errors"][name] = f"{type(error).__name__}: {str(error)[:2000]}"
            console.print(f"[red]{name} failed[/]: {str(error)[:500]}")


def measure_size(warehouse: Warehouse, result: dict[str, Any], data_end_ms: int, runs: int, is_first: bool) -> None:
    """Every measurement of one size; writes one more hour after ``data_end_ms`` (before the incremental build)."""
    from adapters.warehouse.client import connect

    settings, database, state = warehouse.settings, warehouse.database, warehouse.state
    now = datetime.fromtimestamp(data_end_ms / 1000, tz=UTC)
    step(result, "boards", "boards...", lambda: measure_boards(settings, database, now, runs))
    if is_first:  # the first build makes every view and table; later ones are what the schedules run
        step(result, "dbt_first", "first dbt build...", lambda: dbt_build(settings, database, state / "dbt-target"))
    hour = one_more_hour(data_end_ms)
    client = connect(settings, database=database)
    write_chunk(client, hour, warehouse.alignment)
    client.close()
    hour_day = datetime.fromtimestamp(hour.start_ms / 1000, tz=UTC).date()
    step(
        result,
        "dbt_incremental",
        "incremental dbt build after one more hour...",
        lambda: dbt_build(settings, database, state / "dbt-target", *incremental_selections(hour_day)),
    )
    step(
        result,
        "execution_quality_full",
        "execution_quality rebuilt in full (what every build did before it was incremental)...",
        lambda: dbt_build(
            settings, database, state / "dbt-target", ["--select", "execution_quality", "--full-refresh"]
        ),
    )
    report_day = hour_day - timedelta(days=1)
    step(
        result,
        "reports",
        f"the compliance reports of {report_day}...",
        lambda: measure_reports(settings, database, report_day, state / "reports"),
    )
    step(
        result,
        "training_read",
        "the training read (three months of 1m features and bars)...",
        lambda: measure_training_read(settings, database, data_end_ms + HOUR_MS),
    )
    step(result, "status_s", "tickwave status...", lambda: measure_status(settings.state_path, database))
    step(result, "disk", "disk per table...", lambda: measure_disk(settings, database))


def wait_until_settled(settings: Any, database: str, pid: int, limit_s: float = SETTLE_WAIT_S) -> float:
    """Wait until the warehouse merges nothing in ``database`` and idles (two looks in a row); the seconds waited.

    A bulk write of weeks of data leaves the engine merging its parts, removing the merged ones
    and giving memory back for minutes after, which a warehouse grown over a year, a few rows
    at a time, has long done: the figures are taken after. Idle: the warehouse process used
    under a tenth of a core between two looks.
    """
    import psutil

    from adapters.warehouse.client import connect

    client, process = connect(settings, database=database), psutil.Process(pid)
    begun, settled = time.perf_counter(), 0
    try:
        while settled < 2 and time.perf_counter() - begun < limit_s:
            cpu_before = sum(process.cpu_times()[:2])
            time.sleep(SETTLE_POLL_S)
            busy = (sum(process.cpu_times()[:2]) - cpu_before) / SETTLE_POLL_S
            merges = client.query("SELECT count() FROM system.merges WHERE database = currentDatabase()")
            settled = settled + 1 if merges.result_rows[0][0] == 0 and busy < IDLE_CORES else 0
    finally:
        client.close()
    return time.perf_counter() - begun


def run(settings: Any, sizes: list[int], runs: int, state: Path, pid: int) -> list[dict[str, Any]]:
    """Grow one database size by size and measure each; write ``bench/results/scale.json`` after each."""
    from adapters.warehouse.client import connect
    from adapters.warehouse.migrate import migrate

    warehouse = Warehouse(settings, settings.clickhouse.database, state, settings.bar_alignment, pid)
    migrate(settings, database=warehouse.database)
    end_ms = (int(time.time() * 1000) // HOUR_MS - 4) * HOUR_MS  # the history ends four hours back, on the hour
    results: list[dict[str, Any]] = []
    previous = 0
    for ticks in sizes:
        chunks = backfill(previous, ticks, end_ms)
        client = connect(settings, database=warehouse.database)
        begun = time.perf_counter()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"writing {ticks - previous:,} ticks", total=sum(c.ticks for c in chunks))
            for chunk in chunks:
                write_chunk(client, chunk, warehouse.alignment)
                progress.advance(task, chunk.ticks)
        client.close()
        write_s = time.perf_counter() - begun
        previous = ticks
        with console.status("the warehouse merging the parts just written..."):
            settled_s = wait_until_settled(settings, warehouse.database, warehouse.pid)
        console.print(f"[bold]{ticks:,} ticks[/]: written in {write_s:.0f} s, settled {settled_s:.0f} s after")
        console.print(f"load {load()}")
        result: dict[str, Any] = {
            "ticks": ticks,
            "write_s": write_s,
            "settled_s": settled_s,
            "load_before": load(),
            "errors": {},
        }
        # Each size adds one hour after the history (its incremental build's): the boards' now moves with it.
        measure_size(warehouse, result, end_ms + len(results) * HOUR_MS, runs, is_first=not results)
        result["load_after"] = load()
        results.append(result)
        try:
            print_size(result)
        except KeyError as missing:  # a failed measurement: its error is in the results
            console.print(f"[red]no {missing} at this size[/]: {result['errors']}")
        (RESULTS / "scale.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def incremental_s(result: dict[str, Any]) -> float:
    """The incremental build's seconds (results written before it kept its nodes hold the bare figure)."""
    if "dbt_incremental_s" in result:
        return float(result["dbt_incremental_s"])
    return float(result["dbt_incremental"]["s"])


EXECUTION_QUALITY = "model.tickwave.execution_quality"


def node_s(build: dict[str, Any], node: str) -> float:
    """One node's seconds in a recorded build (0 when it was not among the slowest)."""
    return float(build["slowest_nodes_s"].get(node, 0.0))


def print_size(result: dict[str, Any]) -> None:
    ticks = result["ticks"]
    table = Table("figure", "value", title=f"{ticks:,} ticks (load {result['load_before']} -> {result['load_after']})")
    for board in ("tickwave-trader", "tickwave-ops"):
        panels = {name: value for name, value in result["boards"].items() if name.startswith(board)}
        name, worst = max(panels.items(), key=lambda item: item[1]["p95_ms"])
        table.add_row(f"{board}: slowest panel p95", f"{worst['p95_ms']:.1f} ms ({name.split(': ', 1)[1]})")
    table.add_row("floor: SELECT 1 p95", f"{result['boards']['floor: SELECT 1']['p95_ms']:.1f} ms")
    table.add_row("dbt build, incremental after one more hour", f"{incremental_s(result):.1f} s")
    table.add_row(
        "execution_quality: incremental / full rebuild",
        f"{node_s(result['dbt_incremental'], EXECUTION_QUALITY):.1f} s / "
        f"{node_s(result['execution_quality_full'], EXECUTION_QUALITY):.1f} s",
    )
    reports = result["reports"]
    table.add_row("reports of one day", f"{reports['total_s']:.1f} s (views {reports['views_s']:.1f} s)")
    read = result["training_read"]
    table.add_row(
        "training read, 3 months of 1m",
        f"{read['features_s'] + read['bars_s']:.1f} s ({read['rows']:,.0f} feature rows)",
    )
    table.add_row("tickwave status", f"{result['status_s']:.1f} s")
    total = sum(table_disk["bytes"] for table_disk in result["disk"].values())
    table.add_row("disk, all tables", f"{total / 1e6:.0f} MB ({total / 1e6 / (ticks / 1e6):.1f} MB per 1M ticks)")
    console.print(table)


def slowest_panels(results: list[dict[str, Any]], panels: list[str]) -> dict[str, list[float]]:
    """The p95 curves of the six of ``panels`` slowest at the largest size, by a short name."""
    slowest = sorted(panels, key=lambda name: -results[-1]["boards"][name]["p95_ms"])[:6]
    return {name.split(": ", 1)[1][:40]: [result["boards"][name]["p95_ms"] for result in results] for name in slowest}


def plot(results: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Draw each curve against the ticks stored; return the PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    sizes = [result["ticks"] / 1e6 for result in results]
    written = []

    def figure(
        name: str, title: str, unit: str, lines: Callable[[], dict[str, list[float]]], targets: dict[str, float]
    ) -> None:
        try:
            values = lines()
        except KeyError as missing:  # a failed measurement at some size: no curve for it
            console.print(f"[red]no curve {name}[/]: {missing} missing")
            return
        fig, axes = pyplot.subplots(figsize=(7, 4))
        for label, points in values.items():
            axes.plot(sizes, points, marker="o", label=label)
        for label, value in targets.items():
            axes.axhline(value, linestyle="--", color="grey", linewidth=1)
            axes.annotate(label, (sizes[0], value), fontsize=8, color="grey")
        axes.set_xscale("log")
        axes.set_xlabel("ticks stored (millions)")
        axes.set_ylabel(unit)
        axes.set_title(title)
        axes.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"scale_{name}.png"
        fig.savefig(path, dpi=90)
        pyplot.close(fig)
        written.append(path)

    panels = sorted({name for result in results for name in result.get("boards", {}) if name != "floor: SELECT 1"})
    for board, target in (("tickwave-trader", 100.0), ("tickwave-ops", 300.0)):
        mine = [name for name in panels if name.startswith(board)]
        figure(
            board.removeprefix("tickwave-"),
            f"{board}: panel p95 (the 6 slowest at the largest size)",
            "ms",
            partial(slowest_panels, results, mine),
            {f"target {target:.0f} ms": target},
        )
    figure(
        "work",
        "fixed-window work as the history grows",
        "s",
        lambda: {
            "dbt build, incremental (one more hour)": [incremental_s(result) for result in results],
            "reports of one day": [result["reports"]["total_s"] for result in results],
            "training read, 3 months of 1m": [
                result["training_read"]["features_s"] + result["training_read"]["bars_s"] for result in results
            ],
            "tickwave status": [result["status_s"] for result in results],
        },
        {"target 60 s": 60.0},
    )
    figure(
        "execution_quality",
        "execution_quality per build: a month's orders (incremental) or the history's",
        "s",
        lambda: {
            "incremental (what a build runs)": [
                node_s(result["dbt_incremental"], EXECUTION_QUALITY) for result in results
            ],
            "rebuilt in full (what a build ran before)": [
                node_s(result["execution_quality_full"], EXECUTION_QUALITY) for result in results
            ],
        },
        {},
    )
    figure(
        "disk",
        "disk per million ticks",
        "MB per 1M ticks",
        lambda: {
            table: [
                result["disk"].get(table, {}).get("bytes", 0.0) / 1e6 / (result["ticks"] / 1e6) for result in results
            ]
            for table in sorted(results[-1]["disk"], key=lambda name: -results[-1]["disk"][name]["bytes"])[:8]
        },
        {},
    )
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1M and 10M ticks only (minutes)")
    parser.add_argument("--sizes", type=int, nargs="+", help="ticks at each size, ascending (default 1M 10M 100M)")
    parser.add_argument("--runs", type=int, default=20, help="runs of each panel per size (p95: the 19th of 20)")
    parser.add_argument(
        "--warehouse-nice",
        type=int,
        default=0,
        help="the warehouse's niceness (production: 10, which on a shared machine measures the others' load)",
    )
    parser.add_argument("--plot-only", action="store_true", help="draw the curves of the last bench/results/scale.json")
    options = parser.parse_args()
    if options.plot_only:
        for path in plot(json.loads((RESULTS / "scale.json").read_text()), RESULTS):
            console.print(f"curve: {path}")
        return
    sizes = options.sizes or list(QUICK if options.quick else FULL)
    from adapters.endpoints import Endpoint
    from app.services.supervisor import Supervisor
    from app.services.warehouse import WarehouseService
    from tickwave.config import load_settings

    RESULTS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tickwave-bench-scale-") as folder:
        state = Path(folder)
        # The database grown is the warehouse's own, as in production: its access log lands in its query_log.
        database = f"scale_{uuid.uuid4().hex[:8]}"
        settings = load_settings(
            state_dir=state,
            clickhouse={"port": 0, "native_port": 0, "nice": options.warehouse_nice, "database": database},
        )
        supervisor, service = Supervisor(settings), WarehouseService(settings)
        started = supervisor.start(service)
        assert isinstance(started, Endpoint)
        try:
            reader = load_settings(state_dir=state, clickhouse={"database": database})
            results = run(reader, sizes, options.runs, state, started.pid)
        finally:
            supervisor.stop(service)
    for path in plot(results, RESULTS):
        console.print(f"curve: {path}")
    console.print(f"figures: {RESULTS / 'scale.json'}; load now {load()}")


if __name__ == "__main__":
    main()
