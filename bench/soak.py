"""Soak: the whole platform under its supervisor for hours, sampled every minute; what grows, and how fast.

``make soak`` runs ``python -m bench.summary soak`` (``python -m bench.soak``: by default 140
minutes at 500 ticks/s over 10 symbols, the first 60 a warm-up: 80 minutes measured). It brings
the platform up as ``make chaos`` does (``tests.chaos.harness``: ``tickwave up`` with the
supervisor, in a state dir of its own on free ports), with Dagster and its schedules and
sensors running; replays the sample, trains and promotes the demo's model (served to the
dataflow), then streams a live simulated market whose signals the execution process turns
into paper orders. Every ``--sample-s`` it records:

- per supervised service (its pid and every descendant: the dataflow's loader, Dagster's
  daemon): memory (PSS, and what it allocated: PSS without file-backed pages, the judged
  figure), CPU, open descriptors and threads (psutil);
- the bytes on disk of the broker's and the warehouse's data directories, and the
  warehouse's active parts per table (``system.parts``);
- tick-to-signal latency: the closing tick of a 1 s bar seen on the bus (the first tick of
  its symbol at or after the bar's end plus ``streams.late_wait_ms``) to its signal seen on
  the bus, both read by one consumer in this process;
- what each stage has still to take in (``pipeline_lags``: dataflow, loader, execution, audit).

At the end: each series' least-squares slope after the warm-up (per hour; each service's memory
also over the second half of the measured time, which tells a warm-up that outlasted the
one left out from a steady growth), the disk per
million ticks and per trading day at the measured rate, the targets, and the checks of
``make chaos`` (nothing lost, one order per signal, journal = broker = warehouse).
Samples, slopes and verdicts go to ``bench/results/soak.json``, the plot to
``bench/figures/soak.png``. Exit 1 when a check fails, 2 when a target is missed (not with
``--smoke``: a few minutes measure no slope).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from bench.soak_probes import Sample, Sampler, SignalLatency, SoakPlan
from bench.soak_report import plot, publish, report, summary_figures
from bench.summary import record
from tickwave.config import Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"  # the summary of every benchmark, whose table bench/README.md shows
console = Console()

MEMORY_SLOPE_LIMIT_MB_PER_H = 5.0
# ClickHouse delays inserts into a partition that holds 150 active parts (parts_to_delay_insert):
# a table whose parts grow slower than 150 per 24 h stays under it for a whole trading day.
PARTS_SLOPE_LIMIT_PER_H = 150 / 24
DAGSTER_MEMORY_LIMIT_MB = 800.0  # Dagster's own processes (code server, webserver, daemon), runs apart
LATENCY_GROWTH_LIMIT = 1.2  # p99 of the last window within 1.2x the first window's
DAY_S = 24 * 3600  # FX trades around the clock on weekdays


def slope_per_hour(at_s: list[float], values: list[float]) -> float | None:
    """The least-squares slope of ``values`` over time, per hour (None with fewer than two points)."""
    if len(at_s) < 2 or len(set(at_s)) < 2:
        return None
    return float(np.polyfit(np.asarray(at_s) / 3600.0, np.asarray(values, dtype=float), 1)[0])


def window_floors(at_s: list[float], values: list[float], window_s: float) -> tuple[list[float], list[float]]:
    """Each whole ``window_s`` window's least value, at the window's middle (a partial last window is left out)."""
    if not at_s or window_s <= 0:
        return [], []
    start, middles, floors = at_s[0], [], []
    while start + window_s <= at_s[-1] + 1e-9:
        inside = [value for at, value in zip(at_s, values, strict=True) if start <= at < start + window_s]
        if inside:
            middles.append(start + window_s / 2)
            floors.append(min(inside))
        start += window_s
    return middles, floors


def per_million_ticks(ticks: list[int], values: list[float]) -> float | None:
    """The least-squares slope of ``values`` (bytes) over the ticks sent, per million ticks."""
    if len(ticks) < 2 or len(set(ticks)) < 2:
        return None
    return float(np.polyfit(np.asarray(ticks, dtype=float), np.asarray(values, dtype=float), 1)[0]) * 1e6


@dataclass
class Verdict:
    """One target: what was measured against what limit."""

    name: str
    value: float | None
    unit: str
    limit: str
    is_met: bool | None  # None: not measured
    second_half: float | None = None  # a slope's value over the second half of the measured time
    every_sample: float | None = None  # a memory slope through every sample, not the windows' floors


def judge(plan: SoakPlan, samples: list[Sample], latencies: list[tuple[float, float]]) -> dict[str, Any]:
    """The slopes after the warm-up, the disk per million ticks and per day, and the targets' verdicts.

    ``latencies``: (seconds since the live market started, latency ms) of every signal.
    """
    warm = [sample for sample in samples if sample.at_s >= plan.warmup_minutes * 60]
    at_s = [sample.at_s for sample in warm]
    slopes: dict[str, dict[str, float | None]] = {}
    verdicts: list[Verdict] = []
    names = sorted({name for sample in warm for name in sample.services})
    for name in names:
        points = [(sample.at_s, sample.services[name]) for sample in warm if name in sample.services]
        # A restart starts a new process: the slope of one process's life is the leak, so keep the last pid's.
        last_pid = points[-1][1]["pid"] if points else None
        points = [(at, usage) for at, usage in points if usage["pid"] == last_pid]
        times = [at for at, _ in points]
        slopes[name] = {
            f"{metric}_per_h": slope_per_hour(times, [float(usage[metric]) for _, usage in points])
            for metric in ("allocated_mb", "memory_mb", "fds", "threads")
        }
        # The same slope over the second half of the measured time: near zero where the first half's
        # growth was a warm-up that outlasted the warm-up left out (caches, pools, lazy imports filling
        # up), about the whole slope where memory grows at a steady rate.
        for metric in ("allocated_mb", "memory_mb"):
            late = [(at, float(usage[metric])) for at, usage in points if at >= (times[0] + times[-1]) / 2]
            slopes[name][f"{metric}_per_h_second_half"] = slope_per_hour([at for at, _ in late], [v for _, v in late])
        cpu = [usage["cpu_pct"] for _, usage in points if usage.get("cpu_pct") is not None]
        slopes[name]["cpu_pct_mean"] = float(np.mean(cpu)) if cpu else None
        floors = window_floors(times, [float(usage["allocated_mb"]) for _, usage in points], plan.window_minutes * 60)
        slopes[name]["allocated_floor_mb_per_h"] = slope_per_hour(*floors)
        # Judged on what the service allocated (PSS without file-backed pages): a shared library paged
        # in as new code paths run is the kernel's cache of a file, not memory the service holds on to.
        # And on its floor: caches and batches swing a service by tens of MB within minutes (the
        # warehouse between 241 and 294 MB), which tilts a least-squares line through every sample
        # either way; a leak raises the least a service holds, window after window.
        grown = slopes[name]["allocated_floor_mb_per_h"]
        verdicts.append(
            Verdict(
                f"memory slope {name}",
                grown,
                "MB/h",
                f"<= {MEMORY_SLOPE_LIMIT_MB_PER_H:g} MB/h",
                None if grown is None else grown <= MEMORY_SLOPE_LIMIT_MB_PER_H,
                slopes[name]["allocated_mb_per_h_second_half"],
                slopes[name]["allocated_mb_per_h"],
            )
        )
    dagster = [sample.services["orchestration"]["memory_mb"] for sample in warm if "orchestration" in sample.services]
    peak = max(dagster, default=None)
    verdicts.append(
        Verdict(
            "Dagster's code server + webserver + daemon, peak memory",
            peak,
            "MB",
            f"<= {DAGSTER_MEMORY_LIMIT_MB:g} MB (its runs apart)",
            None if peak is None else peak <= DAGSTER_MEMORY_LIMIT_MB,
        )
    )
    runs = [sample.runs for sample in warm if sample.runs]
    slopes["dagster_runs"] = {
        "peak_processes": max((run["processes"] for run in runs), default=None),
        "peak_memory_mb": max((run["memory_mb"] for run in runs), default=None),
    }
    tables = sorted({table for sample in warm for table in sample.parts})
    parts = {table: slope_per_hour(at_s, [float(sample.parts.get(table, 0)) for sample in warm]) for table in tables}
    slopes["parts_per_h"] = parts
    measured = {table: value for table, value in parts.items() if value is not None}
    worst = max(measured, key=lambda table: measured[table], default=None)
    worst_value = measured.get(worst) if worst else None
    verdicts.append(
        Verdict(
            f"active parts slope, steepest table ({worst or '-'})",
            worst_value,
            "parts/h",
            f"<= {PARTS_SLOPE_LIMIT_PER_H:.2f} parts/h (150 parts a day)",
            None if worst_value is None else worst_value <= PARTS_SLOPE_LIMIT_PER_H,
        )
    )
    slopes["kafka_mb_per_h"] = {"all": _mb(slope_per_hour(at_s, [float(s.kafka_bytes) for s in warm]))}
    slopes["warehouse_mb_per_h"] = {"all": _mb(slope_per_hour(at_s, [float(s.warehouse_bytes) for s in warm]))}
    lag_stages = sorted({stage for sample in warm for stage in sample.lags})
    slopes["lag_per_h"] = {
        stage: slope_per_hour(*_known([(s.at_s, s.lags.get(stage)) for s in warm])) for stage in lag_stages
    }
    engine_metrics = sorted({metric for sample in warm for metric in sample.engine})
    slopes["warehouse_engine_mb_per_h"] = {
        metric: _mb(slope_per_hour(*_known([(s.at_s, s.engine.get(metric)) for s in warm])))
        for metric in engine_metrics
    }
    verdicts.append(_latency_verdict(plan, latencies))
    disk = _disk(plan, warm)
    return {
        "slopes": slopes,
        "verdicts": [asdict(verdict) for verdict in verdicts],
        "disk": disk,
        "latency_ms": _latency_summary(plan, latencies),
    }


def _mb(value: float | None) -> float | None:
    return None if value is None else value / 1e6


def _known(points: list[tuple[float, int | None]]) -> tuple[list[float], list[float]]:
    known = [(at, float(value)) for at, value in points if value is not None]
    return [at for at, _ in known], [value for _, value in known]


def _windows(plan: SoakPlan, latencies: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """The latencies of the first and the last window after the warm-up (each at most half of what was measured)."""
    start = plan.warmup_minutes * 60
    end = max((at for at, _ in latencies), default=start)
    width = min(plan.window_minutes * 60, max(0.0, end - start) / 2)
    first = [value for at, value in latencies if start <= at < start + width]
    last = [value for at, value in latencies if end - width <= at <= end]
    return first, last


def _latency_verdict(plan: SoakPlan, latencies: list[tuple[float, float]]) -> Verdict:
    first, last = _windows(plan, latencies)
    limit = f"<= {LATENCY_GROWTH_LIMIT:g}x the first window's p99"
    if not first or not last:
        return Verdict("tick-to-signal p99, last window / first window", None, "x", limit, None)
    ratio = float(np.percentile(last, 99) / max(np.percentile(first, 99), 1e-9))
    return Verdict("tick-to-signal p99, last window / first window", ratio, "x", limit, ratio <= LATENCY_GROWTH_LIMIT)


def _latency_summary(plan: SoakPlan, latencies: list[tuple[float, float]]) -> dict[str, float | int | None]:
    first, last = _windows(plan, latencies)

    def p(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q)) if values else None

    after = [value for at, value in latencies if at >= plan.warmup_minutes * 60]
    return {
        "signals": len(after),
        "p50": p(after, 50),
        "p99": p(after, 99),
        "first_window_p99": p(first, 99),
        "last_window_p99": p(last, 99),
        "first_window_signals": len(first),
        "last_window_signals": len(last),
    }


def _disk(plan: SoakPlan, warm: list[Sample]) -> dict[str, float | None]:
    """Bytes per million ticks (least squares over the ticks sent) and per 24 h at the plan's rate (x 86,400 ticks).

    The warehouse's are its active parts' bytes where sampled: its directory also holds the
    source parts of each merge for 8 minutes (``old_parts_lifetime``), swinging by hundreds of
    megabytes, which a fit over an hour follows rather than what is kept.
    """
    ticks = [sample.ticks for sample in warm]
    seconds = (warm[-1].at_s - warm[0].at_s) if len(warm) > 1 else 0.0
    rate = (ticks[-1] - ticks[0]) / seconds if seconds > 0 else None
    figures: dict[str, float | None] = {"measured_rate_ticks_per_s": rate}
    is_active = any(sample.warehouse_active_bytes for sample in warm)
    for name, field in (
        ("kafka", "kafka_bytes"),
        ("warehouse", "warehouse_active_bytes" if is_active else "warehouse_bytes"),
    ):
        per_million = per_million_ticks(ticks, [float(getattr(sample, field)) for sample in warm])
        figures[f"{name}_mb_per_million_ticks"] = _mb(per_million)
        figures[f"{name}_gb_per_day"] = None if per_million is None else per_million / 1e6 * plan.rate * DAY_S / 1e9
    return figures


RATE_TOLERANCE = 0.02  # the scaling stops once what is kept is within 2 % of the rate asked


def simulator_rate(settings: Settings, symbols: list[str], rate: float, start_ms: int, minutes: float) -> float:
    """The simulator's rate (a day's average) that delivers ``rate`` ticks/s over ``minutes`` from ``start_ms``.

    The simulator's activity follows the UTC hour (at midnight half a day's average, at the
    London/New York overlap twice it) and it keeps a tick only when the quote changed, fewer
    in proportion the more ticks there are: so the rate asked of it is found by simulating a
    minute at the start, the middle and the end of the run, at the live pace's 100 ms steps,
    and scaling until what is kept is within 2 % of ``rate``, in four rounds at most (five seeds
    each: the volatility, and with it the rate, wanders from one run to the next; the run's own
    rate is measured and reported).
    """
    from streams.ingest.simulation import SimulatedMarket

    runs = [(seed, start_ms + int(fraction * minutes * 60_000)) for fraction in (0.0, 0.5, 1.0) for seed in range(5)]
    asked = rate
    for _ in range(4):
        kept = 0
        for seed, start in runs:
            market = SimulatedMarket(symbols, settings.symbols, asked, seed, start)
            kept += sum(len(market.advance(100).time_ms) for _ in range(600))
        ratio = rate / (kept / (60.0 * len(runs)))
        asked *= ratio
        if abs(ratio - 1.0) < RATE_TOLERANCE:
            break
    return asked


def run_soak(plan: SoakPlan, state_dir: Path) -> dict[str, Any]:
    """Bring the platform up, serve a model, stream the market while sampling, settle, check; always bring it down."""
    from app.cli.services import bring_down, bring_up
    from tests.chaos.harness import chaos_settings, check_everything, live_market, serve_a_model, wait_quiet

    settings = chaos_settings(
        state_dir, is_orchestrated=True, reconciliation_window_s=plan.reconciliation_window_minutes * 60
    )
    symbols = list(settings.symbols)[: plan.symbols]
    samples: list[Sample] = []
    latencies: list[tuple[float, float]] = []
    try:
        bring_up(settings)
        serve_a_model(settings, 10.0)
        stop = threading.Event()
        reader = SignalLatency(settings, stop)
        reader.start()
        sampler = Sampler(settings)
        sent: list[int] = []
        asked = simulator_rate(settings, symbols, plan.rate, time.time_ns() // 1_000_000, plan.minutes)
        console.print(f"the simulator set to {asked:,.0f} ticks/s a day's average, {plan.rate:g} at this hour")
        market = threading.Thread(
            target=lambda: sent.append(live_market(settings, symbols, plan.minutes * 60, stop, asked)),
            name="soak-market",
        )
        started = time.monotonic()
        market.start()
        try:
            _sample_until_done(plan, sampler, reader, market, started, samples, latencies)
        finally:
            stop.set()
            market.join()
        console.print(f"live market: {sum(sent):,} ticks sent over {', '.join(symbols)}")
        checks: dict[str, Any] = {"schedules and sensors running": _automations(settings)}
        try:
            wait_quiet(settings, 10.0, timeout_s=600)
            checks |= check_everything(settings)
        except AssertionError as exc:  # reported with the samples, which are worth keeping
            checks["FAILED"] = str(exc)
    finally:
        bring_down(settings)
    return {"samples": samples, "latencies": latencies, "checks": checks, "symbols": symbols}


def _automations(settings: Settings) -> str:
    """How many of Dagster's schedules and sensors run, as `tickwave status` lists them."""
    from app.services.supervisor import Supervisor
    from orchestration.automation_status import automations

    endpoint = Supervisor(settings).endpoint("orchestration")
    if endpoint is None:
        return "Dagster is not running"
    try:
        found = automations(endpoint.address)
    except (OSError, ValueError) as exc:
        return f"not listed ({exc})"
    return f"{sum(item.status == 'RUNNING' for item in found)} of {len(found)}"


def _sample_until_done(
    plan: SoakPlan,
    sampler: Sampler,
    reader: SignalLatency,
    market: threading.Thread,
    started: float,
    samples: list[Sample],
    latencies: list[tuple[float, float]],
) -> None:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("soak: warming up", total=plan.minutes * 60)
        samples.append(sampler.take(0.0, []))
        next_at = started + plan.sample_s
        while market.is_alive():
            market.join(max(0.0, next_at - time.monotonic()))
            at_s = time.monotonic() - started
            taken = reader.take()
            latencies.extend((at_s, value) for value in taken)
            sample = sampler.take(at_s, taken)
            samples.append(sample)
            next_at += plan.sample_s
            progress.update(task, completed=min(at_s, plan.minutes * 60), description=_describe(plan, sample))


def _describe(plan: SoakPlan, sample: Sample) -> str:
    phase = "warm-up" if sample.at_s < plan.warmup_minutes * 60 else "measuring"
    rss = sum(usage["memory_mb"] for usage in sample.services.values())
    p99 = sample.latency_ms.get("p99")
    latency = "-" if p99 is None else f"{p99:.0f} ms"
    return (
        f"soak {phase}: {sample.ticks:,} ticks, memory {rss:,.0f} MB, Kafka {sample.kafka_bytes / 1e6:.0f} MB, "
        f"warehouse {sample.warehouse_bytes / 1e6:.0f} MB, parts {sum(sample.parts.values())}, "
        f"p99 {latency}, loader lag {sample.lags.get('streams loader')}"
    )


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """`make soak`: the run, its table, bench/results/soak.json and bench/figures/soak.png."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    defaults = SoakPlan()  # one copy of the defaults: the plan's
    parser.add_argument(
        "--minutes", type=float, default=defaults.minutes, help="length of the live market (default %(default)g)"
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=defaults.warmup_minutes,
        help="minutes left out of the slopes (default %(default)g: the warehouse settles)",
    )
    parser.add_argument(
        "--rate", type=float, default=defaults.rate, help="simulated ticks per second (default %(default)g)"
    )
    parser.add_argument(
        "--symbols", type=int, default=defaults.symbols, help="symbols of the default registry (default %(default)d)"
    )
    parser.add_argument(
        "--sample-s", type=float, default=defaults.sample_s, help="seconds between samples (default %(default)g)"
    )
    parser.add_argument(
        "--window",
        type=float,
        default=defaults.window_minutes,
        help="latency windows compared, minutes (default %(default)g)",
    )
    parser.add_argument(
        "--reconciliation-window",
        type=float,
        default=defaults.reconciliation_window_minutes,
        help="minutes a periodic reconciliation looks back, and execution keeps ended orders for "
        "(default %(default)g; the live default is a day)",
    )
    parser.add_argument("--smoke", action="store_true", help="a short run: print the targets, fail only on checks")
    parser.add_argument(
        "--summary",
        action="store_true",
        help="add the figures to bench/results/summary.json and bench/README.md's table",
    )
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".tickwave-soak")
    parser.add_argument("--keep", action="store_true", help="keep the state dir (logs, data) after the run")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--figures", type=Path, default=ROOT / "bench" / "figures")
    arguments = parser.parse_args()
    plan = SoakPlan(
        arguments.minutes,
        arguments.warmup,
        arguments.rate,
        arguments.symbols,
        arguments.sample_s,
        arguments.window,
        arguments.reconciliation_window,
        arguments.smoke,
    )
    state_dir = arguments.state_dir.resolve()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)  # the platform is brought down on SIGTERM as on Ctrl-C
    shutil.rmtree(state_dir, ignore_errors=True)  # a fresh platform: the disk figures start from nothing
    load_before, started = os.getloadavg()[0], time.monotonic()
    outcome = run_soak(plan, state_dir)
    judged = judge(plan, outcome["samples"], outcome["latencies"])
    console.print(report(plan, judged, outcome["checks"]))
    missed = [verdict["name"] for verdict in judged["verdicts"] if verdict["is_met"] is False]
    code = 1 if "FAILED" in outcome["checks"] else 2 if missed and not plan.is_smoke else 0
    machine = f"{platform.node()}: {os.cpu_count()} cores, Python {platform.python_version()}"
    command = " ".join(["python", "-m", "bench.soak", *sys.argv[1:]])
    arguments.results.mkdir(parents=True, exist_ok=True)
    document = {
        "benchmark": "soak",
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "command": command,
        "plan": asdict(plan),
        "symbols": outcome["symbols"],
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
        **judged,
        "checks": outcome["checks"],
        "samples": [asdict(sample) for sample in outcome["samples"]],
    }
    (arguments.results / "soak.json").write_text(json.dumps(document, indent=2) + "\n")
    plot(arguments.figures / "soak.png", plan, outcome["samples"])
    console.print(f"samples: {arguments.results / 'soak.json'}; plot: {arguments.figures / 'soak.png'}")
    figures = summary_figures(plan, judged)
    for figure in figures:
        record(**figure)  # under `python -m bench.summary`; nothing on its own
    if arguments.summary:
        run = {
            "benchmark": "soak",
            "command": command,
            "exit_code": code,
            "machine": machine,
            "duration_s": round(time.monotonic() - started, 1),
            "load_before": round(load_before, 2),
            "load_after": round(os.getloadavg()[0], 2),
            "finished_at": document["generated_at"],
        }
        is_repository_results = arguments.results.resolve() == RESULTS.resolve()
        publish(arguments.results, run, figures, ROOT / "bench" / "README.md" if is_repository_results else None)
        if not is_repository_results:
            console.print(f"figures added to {arguments.results / 'summary.json'}; bench/README.md left as it is")
    if not arguments.keep:
        shutil.rmtree(state_dir, ignore_errors=True)
    if code == 1:
        console.print(f"[red]check failed[/]: {outcome['checks']['FAILED']}")
    elif code == 2:
        console.print(f"[red]targets missed[/]: {', '.join(missed)}")
    sys.exit(code)


if __name__ == "__main__":
    main()
