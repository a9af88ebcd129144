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
import contextlib
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

# Run as a script, this folder comes first on sys.path and this file would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import dagster as dg  # noqa: E402
import psutil  # noqa: E402
from dagster_dbt import DbtCliResource  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from adapters.endpoints import Endpoint, free_port  # noqa: E402
from adapters.warehouse.client import connect  # noqa: E402
from adapters.warehouse.migrate import migrate  # noqa: E402
from app.services.supervisor import Supervisor  # noqa: E402
from app.services.warehouse import WarehouseService  # noqa: E402
from bench.summary import record  # noqa: E402
from orchestration.client import RunOutcome, run_job  # noqa: E402
from orchestration.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, dbt_environment, dbt_project  # noqa: E402
from orchestration.resources import TickwaveResource  # noqa: E402
from orchestration.service import (  # noqa: E402
    DEFINITIONS_MODULE,
    LOCATION_NAME,
    REPO_ROOT,
    answers,
    commands,
    dagster_home,
    environment,
    stop_processes,
)
from quality.suites import RAW_TABLES  # noqa: E402
from testkit.synthetic_day import write_synthetic_day  # noqa: E402
from tickwave.config import Settings, load_settings  # noqa: E402

console = Console(width=140)
DAY = datetime(2026, 11, 20, tzinfo=UTC)


def dbt_build_by_hand(settings: Settings, database: str, target: Path, *selections: list[str]) -> float:
    """Run ``dbt build`` once per selection (none: the whole project once); return the total seconds."""
    started = time.perf_counter()
    for selection in selections or ([],):
        command = [
            DBT_EXECUTABLE,
            "build",
            "--project-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",
            str(target),
            "--quiet",
            *selection,
        ]
        done = subprocess.run(
            command,
            env={**os.environ, **dbt_environment(settings, database)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"dbt build failed:\n{done.stdout[-3000:]}")
    return time.perf_counter() - started


# The two dbt invocations the two Dagster jobs make: everything but the daily marts, then one day of them
# (the daily marts: DAILY_MARTS in orchestration/defs/marts/assets.py, imported there with the manifest).
SPLIT = (
    ["--exclude", "tag:daily"],
    ["--select", "tag:daily", "--vars", f"{{partition_day: '{DAY.date()}'}}"],
)


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


def dagster_run(definitions: dg.Definitions, job: str, resources: Mapping[str, object]) -> float:
    """Run the job's selection in process; dbt_marts also runs the daily marts' partition of the day (a second run)."""
    from orchestration.defs.marts.assets import DAILY_MARTS_JOB, MARTS_JOB
    from orchestration.defs.quality.checks import QUALITY_JOB

    # The definitions hold assets, specs and checks alike; dagster's annotations split them across two fields.
    assets: Sequence[Any] = [*(definitions.assets or ()), *(definitions.asset_checks or ())]
    runs: dict[str, list[tuple[dg.UnresolvedAssetJobDefinition, str | None]]] = {
        "dbt_marts": [(MARTS_JOB, None), (DAILY_MARTS_JOB, str(DAY.date()))],
        "quality_checks": [(QUALITY_JOB, None)],
    }
    started = time.perf_counter()
    for definition, partition in runs[job]:
        result = dg.materialize(
            assets,
            selection=definition.selection,
            resources=resources,
            partition_key=partition,
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
        if not result.success:
            raise SystemExit(f"the Dagster run of {definition.name} failed")
    return time.perf_counter() - started


def main() -> None:
    logging.getLogger("dagster").setLevel(logging.WARNING)  # the runs' step events would bury the figures
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks", type=int, default=10_000_000)
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--footprint-only", action="store_true", help="only Dagster's memory, not the dbt timings")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tickwave-bench-orch-") as state:
        settings = load_settings(state_dir=Path(state), clickhouse={"port": 0, "native_port": 0})
        supervisor, service = Supervisor(settings), WarehouseService(settings)
        started = supervisor.start(service)
        assert isinstance(started, Endpoint)
        try:
            settings = load_settings(state_dir=Path(state))
            run(settings, options.ticks, options.orders, options.rounds, Path(state), options.footprint_only)
        finally:
            supervisor.stop(service)


def run(settings: Settings, ticks: int, orders: int, rounds: int, state: Path, footprint_only: bool = False) -> None:
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
    footprint(settings, database, state)
    if footprint_only:
        _drop(settings, database)
        return
    from orchestration.definitions import defs

    definitions = defs()
    resources = {
        "tickwave": TickwaveResource(state_dir=str(settings.state_path), database=database),
        "dbt": DbtCliResource(project_dir=dbt_project(), dbt_executable=DBT_EXECUTABLE),
    }
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
    record(
        f"dbt build, whole project, {ticks:,} ticks / {orders:,} orders",
        whole,
        "s",
        baseline="-",
        target="< 60 s",
        is_met=whole < 60,
    )
    works = (
        ("dbt build as the jobs split it (2 runs)", "dbt", "dbt_dagster", 2),
        ("10 quality checks (GX, 1 run)", "quality", "quality_dagster", 1),
    )
    for work, direct, orchestrated, runs in works:
        overheads = [(b - a) / runs for a, b in zip(timings[direct], timings[orchestrated], strict=True)]
        medians = statistics.median(timings[direct]), statistics.median(timings[orchestrated])
        overhead = statistics.median(overheads)
        table.add_row(work, f"{medians[0]:.1f}", f"{medians[1]:.1f}", f"{overhead:+.1f}", "< 10 s per run")
        record(
            f"{work}: Dagster overhead per run",
            overhead,
            "s",
            baseline=f"the same work called directly: {medians[0]:.1f} s",
            target="< 10 s per run",
            is_met=overhead < 10,
        )
    console.print(table)
    _drop(settings, database)


def _drop(settings: Settings, database: str) -> None:
    drop = connect(settings, database="default")
    drop.command(f"DROP DATABASE IF EXISTS {database} SYNC")
    drop.close()


# --- Dagster's footprint: the orchestration service's process tree, at start, during and after a run ---

FOOTPRINT_TARGET_MB = 800  # the tree's summed RSS (shared pages counted in every process: the strictest sum)
FOOTPRINT_JOB = "dbt_marts"  # the job the schedules launch most often (every 15 minutes)


@dataclass(frozen=True)
class Footprint:
    """A process tree's memory in MB: RSS summed (what the target uses), USS (private) and PSS (shared split)."""

    rss: float
    uss: float
    pss: float
    processes: int

    def text(self) -> str:
        return f"RSS {self.rss:.0f} / USS {self.uss:.0f} / PSS {self.pss:.0f} MB, {self.processes} processes"


def tree_footprint(pids: list[int]) -> Footprint:
    """Sum the memory of ``pids`` and every descendant (processes ending meanwhile are skipped)."""
    rss = uss = pss = 0.0
    count = 0
    members = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(pid)
            members += [root, *root.children(recursive=True)]
    for process in members:
        try:
            memory = process.memory_full_info()
        except psutil.Error:
            continue
        rss, uss, pss, count = rss + memory.rss / 2**20, uss + memory.uss / 2**20, pss + memory.pss / 2**20, count + 1
    return Footprint(rss, uss, pss, count)


def peak_during(pids: list[int], work: Callable[[], RunOutcome]) -> tuple[Footprint, RunOutcome]:
    """Run ``work`` while sampling the tree every 0.5 s; return the sample of the highest RSS and its result."""
    samples: list[Footprint] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.5):
            samples.append(tree_footprint(pids))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = work()
    finally:
        done.set()
        sampler.join()
    return max(samples, key=lambda footprint: footprint.rss), result


OWN_CODE_SERVERS = """\
load_from:
  - python_module:
      module_name: {module}
      working_directory: {root}
      location_name: {location}
"""


def start_layout(
    layout: str, settings: Settings, database: str, port: int, log: BinaryIO
) -> list[subprocess.Popen[bytes]]:
    """Start Dagster as ``layout`` says.

    ``shared``: `tickwave orchestrate` (one code server for the webserver and the daemon). ``own``: the
    webserver and the daemon with a ``python_module`` workspace, so each loads the definitions in a code
    server of its own, as the service ran them before (its parent process is not counted there).
    """
    env = {
        **os.environ,
        "TICKWAVE_STATE_DIR": str(settings.state_path),
        "TICKWAVE_CLICKHOUSE_DATABASE": database,
        "DAGSTER_GRPC_TIMEOUT_SECONDS": "300",  # on a busy machine Dagster's 60 s failed a run's launch
        "TICKWAVE_ORCHESTRATION_SCHEDULES_ENABLED": "false",  # only the measured run, no scheduled one
        "TICKWAVE_ORCHESTRATION_READ_ONLY": "false",  # the measured run is launched over GraphQL in both layouts
    }
    if layout == "shared":
        command = [str(Path(sys.executable).with_name("tickwave")), "orchestrate", "--port", str(port)]
        return [subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)]
    home = dagster_home(settings)
    (home / "workspace.yaml").write_text(
        OWN_CODE_SERVERS.format(module=DEFINITIONS_MODULE, root=REPO_ROOT, location=LOCATION_NAME)
    )
    lines = commands(port, home, home / "unused.sock", read_only=False)
    return [
        subprocess.Popen(
            lines[name],
            env={**env, **environment(settings, home)},
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_default_signals,
        )
        for name in ("webserver", "daemon")
    ]


def _default_signals() -> None:
    # Started from a background shell, SIGINT comes ignored, and Dagster's processes then ignore SIGTERM too.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_layout(processes: list[subprocess.Popen[bytes]]) -> None:
    """Stop `tickwave orchestrate` with SIGTERM as a user does, or the webserver and daemon as the service does."""
    if len(processes) == 1:
        processes[0].terminate()
        processes[0].wait(timeout=120)
        return
    stop_processes(dict(zip(("webserver", "daemon"), processes, strict=True)))


def measure_layout(layout: str, settings: Settings, database: str, state: Path) -> dict[str, Footprint]:
    """Start ``layout``, wait until the code location is loaded; the tree at start, during and after a run."""
    port = free_port()
    log = state / f"dagster-{layout}.log"
    started = time.perf_counter()
    with log.open("wb") as output:
        processes = start_layout(layout, settings, database, port, output)
    pids = [process.pid for process in processes]
    try:
        while not answers(port):
            if any(process.poll() is not None for process in processes) or time.perf_counter() - started > 600:
                raise SystemExit(f"Dagster ({layout}) did not start:\n{log.read_text()[-3000:]}")
            time.sleep(1.0)
        ready_s = time.perf_counter() - started
        time.sleep(20.0)  # the daemon's first sensor and schedule passes
        at_start = tree_footprint(pids)
        full_ui = settings.orchestration.model_copy(update={"read_only": False})
        full = settings.model_copy(update={"orchestration": full_ui})
        peak, outcome = peak_during(pids, lambda: run_job(full, f"http://127.0.0.1:{port}", FOOTPRINT_JOB))
        if not outcome.is_success:
            raise SystemExit(f"the {FOOTPRINT_JOB} run failed ({layout}): {outcome}\n{log.read_text()[-3000:]}")
        time.sleep(10.0)
        after = tree_footprint(pids)
    finally:
        stop_layout(processes)
    console.print(
        f"{layout}: ready in {ready_s:.0f} s; at start {at_start.text()}; during {FOOTPRINT_JOB} "
        f"{peak.text()}; after it {after.text()}"
    )
    return {"at start": at_start, f"peak during a {FOOTPRINT_JOB} run": peak, f"after a {FOOTPRINT_JOB} run": after}


def footprint(settings: Settings, database: str, state: Path) -> None:
    """Measure both layouts in this run (the shared code server second, so it does not profit from a warm cache)."""
    own = measure_layout("own", settings, database, state)
    shared = measure_layout("shared", settings, database, state)
    table = Table(title="Dagster's process tree (webserver, daemon, code servers, runs), MB")
    for column in ("when", "one shared code server", "a code server each (before)", "target (RSS sum)"):
        table.add_column(column)
    for when, measured in shared.items():
        target = f"< {FOOTPRINT_TARGET_MB} MB" if not when.startswith("peak") else "-"
        table.add_row(when, measured.text(), own[when].text(), target)
        is_met = measured.rss < FOOTPRINT_TARGET_MB if not when.startswith("peak") else None
        record(
            f"Dagster tree RSS {when} (USS {measured.uss:.0f}, PSS {measured.pss:.0f} MB)",
            round(measured.rss),
            "MB",
            baseline=f"a code server each: RSS {own[when].rss:.0f}, USS {own[when].uss:.0f}, "
            f"PSS {own[when].pss:.0f} MB",
            target=target if is_met is not None else "",
            is_met=is_met,
        )
    console.print(table)


if __name__ == "__main__":
    main()
