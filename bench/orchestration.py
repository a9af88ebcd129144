"""Orchestration benchmark: the full `dbt build` on a synthetic trading day, and Dagster's run overhead.

1. starts its own warehouse (free loopback port, temporary state dir) and writes one
   synthetic day (``testkit.synthetic_day``: 10M ticks, 100k orders by default) into a
   migrated database;
2. times the full ``dbt build`` (every staging view, mart, test and unit test) once by
   hand (the dbt CLI, as `make` or a user runs it) and once as a Dagster run of the
   ``dbt_marts`` job in process, alternating ``--rounds`` times;
3. times the ten quality checks the same two ways: ``quality.runner`` called directly
   for every raw table, and the ``quality_checks`` job run by Dagster in process.

The overhead of a Dagster run is its wall time minus the direct call's, per round.
Targets: ``dbt build`` under 60 s on that day; Dagster overhead under 10 s.

    .venv/bin/python bench/orchestration.py [--ticks 10000000] [--orders 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, this folder comes first on sys.path and this file would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import dagster as dg  # noqa: E402
from dagster_dbt import DbtCliResource  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from adapters.endpoints import Endpoint  # noqa: E402
from adapters.warehouse.client import connect  # noqa: E402
from adapters.warehouse.migrate import migrate  # noqa: E402
from app.services.supervisor import Supervisor  # noqa: E402
from app.services.warehouse import WarehouseService  # noqa: E402
from bench.summary import record  # noqa: E402
from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_environment, dbt_project  # noqa: E402
from orchestration.resources import TickwaveResource  # noqa: E402
from quality.suites import RAW_TABLES  # noqa: E402
from testkit.synthetic_day import write_synthetic_day  # noqa: E402
from tickwave.config import Settings, load_settings  # noqa: E402

console = Console(width=140)
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def dbt_build_by_hand(settings: Settings, database: str, target: Path, *selections: list[str]) -> float:
    """Run ``dbt build`` once per selection (none: the whole project once); return the total seconds."""
    started = time.perf_counter()
    for selection in selections or ([],):
        command = [DBT_EXECUTABLE, "build", "--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(target),
                   "--quiet", *selection]  # fmt: skip
        done = subprocess.run(command, env={**os.environ, **dbt_environment(settings, database)}, capture_output=True,
                              text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"dbt build failed:\n{done.stdout[-3000:]}")
    return time.perf_counter() - started


# The two dbt invocations the two Dagster jobs make: everything but the daily marts, then one day of them.
SPLIT = (["--exclude", "config.materialized:incremental"],
         ["--select", "config.materialized:incremental", "--vars", f"{{partition_day: '{DAY.date()}'}}"])  # fmt: skip


def quality_by_hand(settings: Settings, database: str) -> float:
    from quality.runner import validate_table, write_results
    from tickwave.market import MarketCalendar

    calendar = MarketCalendar.from_settings(settings.market)
    started = time.perf_counter()
    client = connect(settings, database=database)
    try:
        for table in RAW_TABLES:
            write_results(client, validate_table(client, table, calendar=calendar))
    finally:
        client.close()
    return time.perf_counter() - started


def dagster_run(definitions: dg.Definitions, job: str, resources: dict[str, object]) -> float:
    """Run the job's selection in process; dbt_marts also runs the daily marts' partition of the day (a second run)."""
    from orchestration.defs.marts.assets import DAILY_MARTS_JOB, MARTS_JOB
    from orchestration.defs.quality.checks import QUALITY_JOB

    assets = [*(definitions.assets or []), *(definitions.asset_checks or [])]
    runs = {"dbt_marts": [(MARTS_JOB, None), (DAILY_MARTS_JOB, str(DAY.date()))],
            "quality_checks": [(QUALITY_JOB, None)]}  # fmt: skip
    started = time.perf_counter()
    for definition, partition in runs[job]:
        result = dg.materialize(assets, selection=definition.selection, resources=resources, partition_key=partition,
                                instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)  # fmt: skip
        if not result.success:
            raise SystemExit(f"the Dagster run of {definition.name} failed")
    return time.perf_counter() - started


def main() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)  # the runs' step events would bury the figures
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tickwave-bench-orch-") as state:
        settings = load_settings(state_dir=Path(state), clickhouse={"port": 0})
        supervisor, service = Supervisor(settings), WarehouseService(settings)
        started = supervisor.start(service)
        assert isinstance(started, Endpoint)
        try:
            settings = load_settings(state_dir=Path(state))
            run(settings, options.ticks, options.orders, options.rounds, Path(state))
        finally:
            supervisor.stop(service)


def run(settings: Settings, ticks: int, orders: int, rounds: int, state: Path) -> None:
    database = f"bench_{uuid.uuid4().hex[:8]}"
    migrate(settings, database=database)
    client = connect(settings, database=database)
    begun = time.perf_counter()
    day = write_synthetic_day(client, DAY, ticks, orders)
    written_s = time.perf_counter() - begun
    client.close()
    console.print(
        f"synthetic day: {day.ticks:,} ticks, {day.orders:,} orders, {day.fills:,} fills in {written_s:.1f} s"
    )

    os.environ.update({"GX_ANALYTICS_ENABLED": "false"})
    from orchestration.definitions import defs

    definitions = defs()
    resources = {"tickwave": TickwaveResource(state_dir=str(settings.state_path), database=database),
                 "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE)}  # fmt: skip
    quality_by_hand(settings, database)  # warm-up: GX's import (seconds) belongs to neither side
    names = ("dbt_whole", "dbt", "dbt_dagster", "quality", "quality_dagster")
    timings: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        timings["dbt_whole"].append(dbt_build_by_hand(settings, database, state / "dbt-target"))
        console.print(f"round {round_number + 1}: dbt_whole {timings['dbt_whole'][-1]:.1f} s")
        order = [("dbt", "dbt_dagster"), ("quality", "quality_dagster")]
        for direct, orchestrated in order:
            pair = [direct, orchestrated] if round_number % 2 == 0 else [orchestrated, direct]
            for name in pair:
                if name == "dbt":
                    timings[name].append(dbt_build_by_hand(settings, database, state / "dbt-target", *SPLIT))
                elif name == "quality":
                    timings[name].append(quality_by_hand(settings, database))
                else:
                    job = "dbt_marts" if name == "dbt_dagster" else "quality_checks"
                    timings[name].append(dagster_run(definitions, job, resources))
                console.print(f"round {round_number + 1}: {name} {timings[name][-1]:.1f} s")
    table = Table(title=f"orchestration on {ticks:,} ticks / {orders:,} orders (median of {rounds} rounds)")
    for column in ("work", "direct (s)", "Dagster (s)", "overhead per run (s)", "target"):
        table.add_column(column)
    whole = statistics.median(timings["dbt_whole"])
    table.add_row("dbt build, whole project, one invocation", f"{whole:.1f}", "-", "-", "< 60 s")
    record(f"dbt build, whole project, {ticks:,} ticks / {orders:,} orders", whole, "s", baseline="-",
           target="< 60 s", is_met=whole < 60)  # fmt: skip
    works = (("dbt build as the jobs split it (2 runs)", "dbt", "dbt_dagster", 2),
             ("10 quality checks (GX, 1 run)", "quality", "quality_dagster", 1))  # fmt: skip
    for work, direct, orchestrated, runs in works:
        overheads = [(b - a) / runs for a, b in zip(timings[direct], timings[orchestrated], strict=True)]
        medians = statistics.median(timings[direct]), statistics.median(timings[orchestrated])
        overhead = statistics.median(overheads)
        table.add_row(work, f"{medians[0]:.1f}", f"{medians[1]:.1f}", f"{overhead:+.1f}", "< 10 s per run")
        record(f"{work}: Dagster overhead per run", overhead, "s",
               baseline=f"the same work called directly: {medians[0]:.1f} s", target="< 10 s per run",
               is_met=overhead < 10)  # fmt: skip
    console.print(table)
    drop = connect(settings, database="default")
    drop.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    drop.close()


if __name__ == "__main__":
    main()
