"""What ``bench.soak`` shows of a run: the table it prints, the plot, the figures of bench/README.md's table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from bench.soak_probes import Sample, SoakPlan


def plot(path: Path, plan: SoakPlan, samples: list[Sample]) -> None:
    """Four panels over the run: memory per service, active parts per table, latency per minute, disk and lag."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    minutes = [sample.at_s / 60 for sample in samples]
    figure, axes = pyplot.subplots(2, 2, figsize=(13, 8), sharex=True)
    (rss, parts), (latency, disk) = axes
    for name in sorted({name for sample in samples for name in sample.services}):
        held = [(s.at_s / 60, s.services[name]) for s in samples if name in s.services]
        line = rss.plot(
            [at for at, _ in held], [usage.get("allocated_mb", usage["memory_mb"]) for _, usage in held], label=name
        )[0]
        rss.plot(
            [at for at, _ in held],
            [usage["memory_mb"] for _, usage in held],
            color=line.get_color(),
            linestyle=":",
            linewidth=0.8,
        )
    tracked = [(s.at_s / 60, s.engine["MemoryTracking"] / 1e6) for s in samples if "MemoryTracking" in s.engine]
    if tracked:
        rss.plot(
            [at for at, _ in tracked],
            [mb for _, mb in tracked],
            color="black",
            linestyle="--",
            linewidth=0.8,
            label="warehouse engine, tracked",
        )
    rss.set_ylabel("memory, MB, process tree (allocated; dotted: PSS)")
    rss.legend(fontsize="small")
    for table in sorted({table for sample in samples for table in sample.parts}):
        values = [sample.parts.get(table, 0) for sample in samples]
        if max(values) > 1:
            parts.plot(minutes, values, label=table)
    parts.set_ylabel("active parts")
    parts.legend(fontsize="x-small", ncol=2)
    with_latency = [sample for sample in samples if sample.latency_ms]
    for quantile in ("p50", "p99"):
        latency.plot(
            [s.at_s / 60 for s in with_latency], [s.latency_ms[quantile] for s in with_latency], label=quantile
        )
    latency.set_ylabel("tick-to-signal (ms, per interval)")
    latency.legend(fontsize="small")
    disk.plot(minutes, [sample.kafka_bytes / 1e6 for sample in samples], label="Kafka")
    disk.plot(minutes, [sample.warehouse_bytes / 1e6 for sample in samples], label="warehouse")
    if any(sample.warehouse_active_bytes for sample in samples):
        disk.plot(minutes, [sample.warehouse_active_bytes / 1e6 for sample in samples], label="warehouse, active parts")
    disk.set_ylabel("on disk (MB)")
    lag = disk.twinx()
    lag.plot(
        minutes,
        [sample.lags.get("streams loader") or 0 for sample in samples],
        color="grey",
        linestyle=":",
        label="loader lag",
    )
    lag.set_ylabel("loader lag (messages)")
    disk.legend(fontsize="small", loc="upper left")
    for axis in (rss, parts, latency, disk):
        axis.axvline(plan.warmup_minutes, color="black", linewidth=0.6, linestyle="--")
    latency.set_xlabel("minutes into the live market (dashed: end of warm-up)")
    disk.set_xlabel("minutes into the live market (dashed: end of warm-up)")
    seconds = samples[-1].at_s - samples[0].at_s if len(samples) > 1 else 0.0
    measured = f"{(samples[-1].ticks - samples[0].ticks) / seconds:,.0f}" if seconds > 0 else "-"
    figure.suptitle(
        f"soak: {plan.minutes:g} min, the simulator set for {plan.rate:g} ticks/s ({measured} ticks/s "
        f"measured) over {plan.symbols} symbols"
    )
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def report(plan: SoakPlan, judged: dict[str, Any], checks: dict[str, Any]) -> Table:
    """The table ``make soak`` prints: the slopes per service, the disk, the targets, the checks."""
    table = Table(
        "figure",
        "value",
        "target",
        title=f"soak: {plan.minutes:g} min at {plan.rate:g} ticks/s, "
        f"slopes after a {plan.warmup_minutes:g} min warm-up",
    )
    slopes = judged["slopes"]
    for name, figures in slopes.items():
        if not isinstance(figures, dict) or "allocated_floor_mb_per_h" not in figures:
            continue  # not a service: the disk, parts, lag, engine and runs rows follow
        table.add_row(
            f"{name}: allocated memory (PSS) / descriptors / threads per h, CPU mean",
            f"{_fmt(figures['allocated_floor_mb_per_h'])} MB floor, {_fmt(figures['allocated_mb_per_h'])} "
            f"every sample (second half "
            f"{_fmt(figures['allocated_mb_per_h_second_half'])}; PSS {_fmt(figures['memory_mb_per_h'])}) / "
            f"{_fmt(figures['fds_per_h'])} / {_fmt(figures['threads_per_h'])}; "
            f"{_fmt(figures['cpu_pct_mean'])} %",
            "",
        )
    runs = slopes["dagster_runs"]
    table.add_row(
        "Dagster's runs (apart from orchestration above), at most",
        f"{_fmt(runs['peak_processes'])} processes, {_fmt(runs['peak_memory_mb'])} MB",
        "",
    )
    growing = {table: value for table, value in slopes["parts_per_h"].items() if value}
    table.add_row(
        "active parts per h (tables that moved)",
        ", ".join(f"{t} {_fmt(v)}" for t, v in growing.items()) or "none moved",
        "",
    )
    engine = slopes.get("warehouse_engine_mb_per_h") or {}
    table.add_row(
        "warehouse engine's own accounting (system.metrics), MB/h",
        ", ".join(f"{metric} {_fmt(v)}" for metric, v in engine.items()) or "not read",
        "",
    )
    table.add_row("lag per h", ", ".join(f"{stage} {_fmt(v)}" for stage, v in slopes["lag_per_h"].items()), "")
    disk = judged["disk"]
    for name in ("kafka", "warehouse"):
        table.add_row(
            f"{name} on disk",
            f"{_fmt(slopes[f'{name}_mb_per_h']['all'])} MB/h; "
            f"{_fmt(disk[f'{name}_mb_per_million_ticks'])} MB per 1M ticks; "
            f"{_fmt(disk[f'{name}_gb_per_day'])} GB per 24 h at {plan.rate:g} ticks/s (this run: "
            f"{_fmt(disk['measured_rate_ticks_per_s'])} ticks/s)",
            "",
        )
    latency = judged["latency_ms"]
    table.add_row(
        "tick-to-signal after warm-up",
        f"p50 {_fmt(latency['p50'])} / p99 {_fmt(latency['p99'])} ms "
        f"({latency['signals']:,} signals); first window p99 {_fmt(latency['first_window_p99'])}, last "
        f"{_fmt(latency['last_window_p99'])} ms",
        "",
    )
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
        {
            "figure": f"{verdict['name']} ({run})",
            "value": verdict["value"],
            "unit": verdict["unit"],
            "baseline": _second_half(verdict),
            "target": verdict["limit"],
            "is_met": verdict["is_met"],
        }
        for verdict in judged["verdicts"]
        if verdict["value"] is not None
    ]
    disk = judged["disk"]
    for name in ("kafka", "warehouse"):
        per_million = disk[f"{name}_mb_per_million_ticks"]
        if per_million is not None:
            rate = _fmt(disk["measured_rate_ticks_per_s"])
            per_day = f"{_fmt(disk[f'{name}_gb_per_day'])} GB per 24 h at {plan.rate:g} ticks/s (run: {rate}/s)"
            figures.append(
                {
                    "figure": f"{name} on disk per 1M ticks ({run})",
                    "value": per_million,
                    "unit": "MB",
                    "baseline": per_day,
                    "target": "",
                    "is_met": None,
                }
            )
    return figures


def _second_half(verdict: dict[str, Any]) -> str:
    parts = []
    if verdict.get("every_sample") is not None:
        parts.append(f"through every sample: {_fmt(verdict['every_sample'])} {verdict['unit']}")
    if verdict.get("second_half") is not None:
        parts.append(f"second half of the measured time: {_fmt(verdict['second_half'])} {verdict['unit']}")
    return "; ".join(parts)


def publish(results: Path, run: dict[str, Any], figures: list[dict[str, Any]], readme: Path | None) -> None:
    """Put the soak's run and figures in ``results``/summary.json and, given ``readme``, in its table.

    The table is made from the whole summary: only bench/results (every benchmark's) may write it.
    """
    from bench.summary import markdown_table, merged, update_readme

    path = results / "summary.json"
    fresh = {
        "generated_at": run["finished_at"],
        "machine": run.pop("machine"),
        "runs": [run],
        "figures": [{"benchmark": "soak", **figure} for figure in figures],
    }
    summary = merged(json.loads(path.read_text()), fresh) if path.exists() else fresh
    path.write_text(json.dumps(summary, indent=2) + "\n")
    if readme is not None:
        update_readme(readme, markdown_table(summary))
