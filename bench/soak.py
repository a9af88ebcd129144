"""Soak: the whole platform under its supervisor for hours, sampled every minute; what grows, and how fast.

``make soak`` runs ``python -m bench.summary soak`` (``python -m bench.soak``: one hour at
500 ticks/s over 10 symbols by default). It brings the platform up as ``make chaos`` does
(``tests.chaos.harness``: ``tickwave up`` with the supervisor, in a state dir of its own on
free ports), with Dagster and its schedules and sensors running; replays the sample, trains
and promotes the demo's model (served to the dataflow), then streams a live simulated market
whose signals the execution process turns into paper orders. Every ``--sample-s`` it records:

- per supervised service (its pid and every descendant: the dataflow's loader, Dagster's
  daemon): resident memory, CPU, open descriptors and threads (psutil);
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
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from bench.soak_probes import Sample, Sampler, SignalLatency
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


@dataclass(frozen=True)
class SoakPlan:
    """How long, how fast, how often."""

    minutes: float = 60.0
    warmup_minutes: float = 10.0
    rate: float = 500.0  # simulated ticks per second, all symbols together
    symbols: int = 10
    sample_s: float = 60.0
    window_minutes: float = 10.0  # latency: the first and the last window after the warm-up
    is_smoke: bool = False  # a few minutes: print the targets, do not fail on them


def slope_per_hour(at_s: list[float], values: list[float]) -> float | None:
    """The least-squares slope of ``values`` over time, per hour (None with fewer than two points)."""
    if len(at_s) < 2 or len(set(at_s)) < 2:
        return None
    return float(np.polyfit(np.asarray(at_s) / 3600.0, np.asarray(values, dtype=float), 1)[0])


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
            for metric in ("memory_mb", "fds", "threads")
        }
        # The same slope over the second half of the measured time: near zero where the first half's
        # growth was a warm-up that outlasted the warm-up left out (caches, pools, lazy imports filling
        # up), about the whole slope where memory grows at a steady rate.
        late = [(at, float(usage["memory_mb"])) for at, usage in points if at >= (times[0] + times[-1]) / 2]
        slopes[name]["memory_mb_per_h_second_half"] = slope_per_hour([at for at, _ in late], [mb for _, mb in late])
        cpu = [usage["cpu_pct"] for _, usage in points if usage["cpu_pct"] is not None]
        slopes[name]["cpu_pct_mean"] = float(np.mean(cpu)) if cpu else None
        rss = slopes[name]["memory_mb_per_h"]
        verdicts.append(Verdict(f"memory slope {name}", rss, "MB/h", f"<= {MEMORY_SLOPE_LIMIT_MB_PER_H:g} MB/h",
                                None if rss is None else rss <= MEMORY_SLOPE_LIMIT_MB_PER_H,
                                slopes[name]["memory_mb_per_h_second_half"]))  # fmt: skip
    dagster = [sample.services["orchestration"]["memory_mb"] for sample in warm if "orchestration" in sample.services]
    peak = max(dagster, default=None)
    verdicts.append(Verdict("Dagster's code server + webserver + daemon, peak memory", peak, "MB",
                            f"<= {DAGSTER_MEMORY_LIMIT_MB:g} MB (its runs apart)",
                            None if peak is None else peak <= DAGSTER_MEMORY_LIMIT_MB))  # fmt: skip
    runs = [sample.runs for sample in warm if sample.runs]
    slopes["dagster_runs"] = {"peak_processes": max((run["processes"] for run in runs), default=None),
                              "peak_memory_mb": max((run["memory_mb"] for run in runs), default=None)}  # fmt: skip
    tables = sorted({table for sample in warm for table in sample.parts})
    parts = {table: slope_per_hour(at_s, [float(sample.parts.get(table, 0)) for sample in warm]) for table in tables}
    slopes["parts_per_h"] = parts
    measured = {table: value for table, value in parts.items() if value is not None}
    worst = max(measured, key=lambda table: measured[table], default=None)
    worst_value = measured.get(worst) if worst else None
    verdicts.append(Verdict(f"active parts slope, steepest table ({worst or '-'})", worst_value, "parts/h",
                            f"<= {PARTS_SLOPE_LIMIT_PER_H:.2f} parts/h (150 parts a day)",
                            None if worst_value is None else worst_value <= PARTS_SLOPE_LIMIT_PER_H))  # fmt: skip
    slopes["kafka_mb_per_h"] = {"all": _mb(slope_per_hour(at_s, [float(s.kafka_bytes) for s in warm]))}
    slopes["warehouse_mb_per_h"] = {"all": _mb(slope_per_hour(at_s, [float(s.warehouse_bytes) for s in warm]))}
    lag_stages = sorted({stage for sample in warm for stage in sample.lags})
    slopes["lag_per_h"] = {
        stage: slope_per_hour(*_known([(s.at_s, s.lags.get(stage)) for s in warm])) for stage in lag_stages
    }
    verdicts.append(_latency_verdict(plan, latencies))
    disk = _disk(plan, warm)
    return {"slopes": slopes, "verdicts": [asdict(verdict) for verdict in verdicts], "disk": disk,
            "latency_ms": _latency_summary(plan, latencies)}  # fmt: skip


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
    return {"signals": len(after), "p50": p(after, 50), "p99": p(after, 99), "first_window_p99": p(first, 99),
            "last_window_p99": p(last, 99), "first_window_signals": len(first),
            "last_window_signals": len(last)}  # fmt: skip


def _disk(plan: SoakPlan, warm: list[Sample]) -> dict[str, float | None]:
    """Bytes per million ticks (least squares over the ticks sent) and per 24 h at the plan's rate.

    The simulator's rate is a day's average (its activity follows the hour: this hour's rate,
    measured, may be above or below it), so a day holds ``rate`` x 86,400 ticks.
    """
    ticks = [sample.ticks for sample in warm]
    seconds = (warm[-1].at_s - warm[0].at_s) if len(warm) > 1 else 0.0
    rate = (ticks[-1] - ticks[0]) / seconds if seconds > 0 else None
    figures: dict[str, float | None] = {"measured_rate_ticks_per_s": rate}
    for name in ("kafka", "warehouse"):
        per_million = per_million_ticks(ticks, [float(getattr(sample, f"{name}_bytes")) for sample in warm])
        figures[f"{name}_mb_per_million_ticks"] = _mb(per_million)
        figures[f"{name}_gb_per_day"] = None if per_million is None else per_million / 1e6 * plan.rate * DAY_S / 1e9
    return figures


def plot(path: Path, plan: SoakPlan, samples: list[Sample]) -> None:
    """Four panels over the run: memory (PSS) per service, active parts per table, latency per minute, disk and lag."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    minutes = [sample.at_s / 60 for sample in samples]
    figure, axes = pyplot.subplots(2, 2, figsize=(13, 8), sharex=True)
    (rss, parts), (latency, disk) = axes
    for name in sorted({name for sample in samples for name in sample.services}):
        points = [(s.at_s / 60, s.services[name]["memory_mb"]) for s in samples if name in s.services]
        rss.plot([at for at, _ in points], [value for _, value in points], label=name)
    rss.set_ylabel("memory (PSS, MB, process tree)")
    rss.legend(fontsize="small")
    for table in sorted({table for sample in samples for table in sample.parts}):
        values = [sample.parts.get(table, 0) for sample in samples]
        if max(values) > 1:
            parts.plot(minutes, values, label=table)
    parts.set_ylabel("active parts")
    parts.legend(fontsize="x-small", ncol=2)
    with_latency = [sample for sample in samples if sample.latency_ms]
    for quantile in ("p50", "p99"):
        latency.plot([s.at_s / 60 for s in with_latency], [s.latency_ms[quantile] for s in with_latency],
                     label=quantile)  # fmt: skip
    latency.set_ylabel("tick-to-signal (ms, per interval)")
    latency.legend(fontsize="small")
    disk.plot(minutes, [sample.kafka_bytes / 1e6 for sample in samples], label="Kafka")
    disk.plot(minutes, [sample.warehouse_bytes / 1e6 for sample in samples], label="warehouse")
    disk.set_ylabel("on disk (MB)")
    lag = disk.twinx()
    lag.plot(minutes, [sample.lags.get("streams loader") or 0 for sample in samples], color="grey", linestyle=":",
             label="loader lag")  # fmt: skip
    lag.set_ylabel("loader lag (messages)")
    disk.legend(fontsize="small", loc="upper left")
    for axis in (rss, parts, latency, disk):
        axis.axvline(plan.warmup_minutes, color="black", linewidth=0.6, linestyle="--")
    latency.set_xlabel("minutes into the live market (dashed: end of warm-up)")
    disk.set_xlabel("minutes into the live market (dashed: end of warm-up)")
    seconds = samples[-1].at_s - samples[0].at_s if len(samples) > 1 else 0.0
    measured = f"{(samples[-1].ticks - samples[0].ticks) / seconds:,.0f}" if seconds > 0 else "-"
    figure.suptitle(f"soak: {plan.minutes:g} min, simulator at {plan.rate:g} ticks/s a day's average ({measured} "
                    f"ticks/s this run) over {plan.symbols} symbols")  # fmt: skip
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def run_soak(plan: SoakPlan, state_dir: Path) -> dict[str, Any]:
    """Bring the platform up, serve a model, stream the market while sampling, settle, check; always bring it down."""
    from app.cli.services import bring_down, bring_up
    from tests.chaos.harness import chaos_settings, check_everything, live_market, serve_a_model, wait_quiet

    settings = chaos_settings(state_dir, is_orchestrated=True)
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
        market = threading.Thread(target=lambda: sent.append(live_market(settings, symbols, plan.minutes * 60, stop,
                                                                         plan.rate)), name="soak-market")  # fmt: skip
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
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())  # fmt: skip
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
    return (f"soak {phase}: {sample.ticks:,} ticks, memory {rss:,.0f} MB, Kafka {sample.kafka_bytes / 1e6:.0f} MB, "
            f"warehouse {sample.warehouse_bytes / 1e6:.0f} MB, parts {sum(sample.parts.values())}, "
            f"p99 {latency}, loader lag {sample.lags.get('streams loader')}")  # fmt: skip


def report(plan: SoakPlan, judged: dict[str, Any], checks: dict[str, Any]) -> Table:
    """The table ``make soak`` prints: the slopes per service, the disk, the targets, the checks."""
    table = Table("figure", "value", "target", title=f"soak: {plan.minutes:g} min at {plan.rate:g} ticks/s, "
                  f"slopes after a {plan.warmup_minutes:g} min warm-up")  # fmt: skip
    slopes = judged["slopes"]
    for name, figures in slopes.items():
        if name in ("parts_per_h", "lag_per_h", "kafka_mb_per_h", "warehouse_mb_per_h", "dagster_runs"):
            continue
        table.add_row(f"{name}: memory / descriptors / threads per h, CPU mean",
                      f"{_fmt(figures['memory_mb_per_h'])} MB (second half "
                      f"{_fmt(figures['memory_mb_per_h_second_half'])}) / {_fmt(figures['fds_per_h'])} / "
                      f"{_fmt(figures['threads_per_h'])}; {_fmt(figures['cpu_pct_mean'])} %", "")  # fmt: skip
    runs = slopes["dagster_runs"]
    table.add_row("Dagster's runs (apart from orchestration above), at most", f"{_fmt(runs['peak_processes'])} "
                  f"processes, {_fmt(runs['peak_memory_mb'])} MB", "")  # fmt: skip
    growing = {table: value for table, value in slopes["parts_per_h"].items() if value}
    table.add_row("active parts per h (tables that moved)", ", ".join(f"{t} {_fmt(v)}" for t, v in growing.items())
                  or "none moved", "")  # fmt: skip
    table.add_row("lag per h", ", ".join(f"{stage} {_fmt(v)}" for stage, v in slopes["lag_per_h"].items()), "")
    disk = judged["disk"]
    for name in ("kafka", "warehouse"):
        table.add_row(f"{name} on disk", f"{_fmt(slopes[f'{name}_mb_per_h']['all'])} MB/h; "
                      f"{_fmt(disk[f'{name}_mb_per_million_ticks'])} MB per 1M ticks; "
                      f"{_fmt(disk[f'{name}_gb_per_day'])} GB per 24 h at {plan.rate:g} ticks/s on average (this "
                      f"run: {_fmt(disk['measured_rate_ticks_per_s'])} ticks/s)", "")  # fmt: skip
    latency = judged["latency_ms"]
    table.add_row("tick-to-signal after warm-up", f"p50 {_fmt(latency['p50'])} / p99 {_fmt(latency['p99'])} ms "
                  f"({latency['signals']:,} signals); first window p99 {_fmt(latency['first_window_p99'])}, last "
                  f"{_fmt(latency['last_window_p99'])} ms", "")  # fmt: skip
    for verdict in judged["verdicts"]:
        mark = {True: "[green]pass[/]", False: "[red]FAIL[/]", None: "[yellow]not measured[/]"}[verdict["is_met"]]
        table.add_row(verdict["name"], f"{_fmt(verdict['value'])} {verdict['unit']}", f"{verdict['limit']} {mark}")
    for name, value in checks.items():
        table.add_row(f"check: {name}", str(value), "")
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def summary_figures(plan: SoakPlan, judged: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of bench/README.md's table: each target's verdict and the disk per million ticks."""
    run = f"{plan.minutes:g} min at {plan.rate:g} ticks/s, {plan.symbols} symbols"
    figures = [
        {"figure": f"{verdict['name']} ({run})", "value": verdict["value"], "unit": verdict["unit"],
         "baseline": _second_half(verdict), "target": verdict["limit"], "is_met": verdict["is_met"]}
        for verdict in judged["verdicts"] if verdict["value"] is not None
    ]  # fmt: skip
    disk = judged["disk"]
    for name in ("kafka", "warehouse"):
        per_million = disk[f"{name}_mb_per_million_ticks"]
        if per_million is not None:
            rate = _fmt(disk["measured_rate_ticks_per_s"])
            per_day = f"{_fmt(disk[f'{name}_gb_per_day'])} GB per 24 h at {plan.rate:g} ticks/s (run: {rate}/s)"
            figures.append({"figure": f"{name} on disk per 1M ticks ({run})", "value": per_million, "unit": "MB",
                            "baseline": per_day, "target": "", "is_met": None})  # fmt: skip
    return figures


def _second_half(verdict: dict[str, Any]) -> str:
    value = verdict.get("second_half")
    return "" if value is None else f"second half of the measured time: {_fmt(value)} {verdict['unit']}"


def publish(results: Path, run: dict[str, Any], figures: list[dict[str, Any]], readme: Path | None) -> None:
    """Put the soak's run and figures in ``results``/summary.json and, given ``readme``, in its table.

    The table is made from the whole summary: only bench/results (every benchmark's) may write it.
    """
    from bench.summary import markdown_table, merged, update_readme

    path = results / "summary.json"
    fresh = {"generated_at": run["finished_at"], "machine": run.pop("machine"), "runs": [run],
             "figures": [{"benchmark": "soak", **figure} for figure in figures]}  # fmt: skip
    summary = merged(json.loads(path.read_text()), fresh) if path.exists() else fresh
    path.write_text(json.dumps(summary, indent=2) + "\n")
    if readme is not None:
        update_readme(readme, markdown_table(summary))


def main() -> None:
    """`make soak`: the run, its table, bench/results/soak.json and bench/figures/soak.png."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="length of the live market (default 60)")
    parser.add_argument("--warmup", type=float, default=10.0, help="minutes left out of the slopes (default 10)")
    parser.add_argument("--rate", type=float, default=500.0, help="simulated ticks per second (default 500)")
    parser.add_argument("--symbols", type=int, default=10, help="symbols of the default registry (default 10)")
    parser.add_argument("--sample-s", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument("--window", type=float, default=10.0, help="latency windows compared, minutes (default 10)")
    parser.add_argument("--smoke", action="store_true", help="a short run: print the targets, fail only on checks")
    parser.add_argument("--summary", action="store_true",
                        help="add the figures to bench/results/summary.json and bench/README.md's table")  # fmt: skip
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".tickwave-soak")
    parser.add_argument("--keep", action="store_true", help="keep the state dir (logs, data) after the run")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--figures", type=Path, default=ROOT / "bench" / "figures")
    arguments = parser.parse_args()
    plan = SoakPlan(arguments.minutes, arguments.warmup, arguments.rate, arguments.symbols, arguments.sample_s,
                    arguments.window, arguments.smoke)  # fmt: skip
    state_dir = arguments.state_dir.resolve()
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
    document = {"benchmark": "soak", "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine, "command": command, "plan": asdict(plan), "symbols": outcome["symbols"],
                "load_before": load_before, "load_after": os.getloadavg()[0], **judged, "checks": outcome["checks"],
                "samples": [asdict(sample) for sample in outcome["samples"]]}  # fmt: skip
    (arguments.results / "soak.json").write_text(json.dumps(document, indent=2) + "\n")
    plot(arguments.figures / "soak.png", plan, outcome["samples"])
    console.print(f"samples: {arguments.results / 'soak.json'}; plot: {arguments.figures / 'soak.png'}")
    figures = summary_figures(plan, judged)
    for figure in figures:
        record(**figure)  # under `python -m bench.summary`; nothing on its own
    if arguments.summary:
        run = {"benchmark": "soak", "command": command, "exit_code": code, "machine": machine,
               "duration_s": round(time.monotonic() - started, 1), "load_before": round(load_before, 2),
               "load_after": round(os.getloadavg()[0], 2), "finished_at": document["generated_at"]}  # fmt: skip
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
