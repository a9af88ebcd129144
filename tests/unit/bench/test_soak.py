"""``make soak``: the slopes after the warm-up, the targets, the disk per million ticks, the closing tick's pick."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest
from rich.console import Console

from bench.soak import SoakPlan, judge, per_million_ticks, simulator_rate, slope_per_hour
from bench.soak_probes import Sample, SignalLatency, tree_usage
from bench.soak_report import report, summary_figures
from bench.summary import benchmarks
from tickwave.config import load_settings

ROOT = Path(__file__).resolve().parents[3]
PLAN = SoakPlan(minutes=60, warmup_minutes=10, window_minutes=10)


def samples(rss_mb_per_h: float, parts_per_h: float = 0.0, restart_at_min: float | None = None) -> list[Sample]:
    # One sample a minute for an hour; the service's RSS grows by rss_mb_per_h, plus a jump of 500 MB in the warm-up.
    taken = []
    for minute in range(61):
        at_s = minute * 60.0
        rss = 300.0 + rss_mb_per_h * at_s / 3600 + (500.0 if 2 <= minute < 10 else 0.0)
        pid = 1
        if restart_at_min is not None and minute >= restart_at_min:  # a new process, flat
            pid, rss = 2, 100.0
        taken.append(
            Sample(
                at_s=at_s,
                ticks=minute * 30_000,
                services={
                    "streams": {
                        "pid": pid,
                        "memory_mb": rss + 50.0,
                        "allocated_mb": rss,
                        "fds": 40,
                        "threads": 12,
                        "cpu_pct": 30.0,
                    }
                },
                kafka_bytes=minute * 30_000 * 200,
                warehouse_bytes=minute * 30_000 * 50,
                parts={"ticks": int(8 + parts_per_h * at_s / 3600 + minute % 3)},
            )
        )
    return taken


def verdict(judged: dict[str, object], prefix: str) -> dict[str, object]:
    return next(item for item in judged["verdicts"] if item["name"].startswith(prefix))  # type: ignore[attr-defined, index]


def test_slope_per_hour_when_linear_then_its_rate_per_hour() -> None:
    assert slope_per_hour([0, 1800, 3600], [100, 105, 110]) == pytest.approx(10.0)
    assert slope_per_hour([0], [1]) is None


def test_per_million_ticks_when_bytes_follow_ticks_then_bytes_per_million() -> None:
    assert per_million_ticks([0, 1_000_000, 2_000_000], [5e6, 105e6, 205e6]) == pytest.approx(100e6)


@pytest.mark.parametrize(("growth", "is_met"), [(0.0, True), (4.0, True), (6.0, False), (50.0, False)])
def test_judge_when_rss_grows_then_met_only_up_to_5_mb_per_hour(growth: float, is_met: bool) -> None:
    judged = judge(PLAN, samples(growth), [])

    rss = verdict(judged, "memory slope streams")
    assert rss["value"] == pytest.approx(growth, abs=0.01)  # the warm-up's jump is left out
    assert rss["is_met"] is is_met


def test_judge_when_memory_levels_off_late_then_the_second_half_slope_tells_it_from_a_steady_growth() -> None:
    levelling = samples(0.0)
    for sample in levelling:  # +40 MB approaching its level with an 8-minute time constant
        sample.services["streams"]["allocated_mb"] = 300.0 + 40.0 * (1 - math.exp(-sample.at_s / 480))

    judged = judge(PLAN, levelling, [])
    steady = judge(PLAN, samples(20.0), [])

    rss = verdict(judged, "memory slope streams")
    assert rss["value"] > 5.0 and rss["is_met"] is False  # the target stays the whole measured time's slope
    assert rss["second_half"] == pytest.approx(0.0, abs=2.0)
    assert verdict(steady, "memory slope streams")["second_half"] == pytest.approx(20.0, abs=0.01)
    assert "second half of the measured time" in summary_figures(PLAN, judged)[0]["baseline"]


def test_judge_when_memory_swings_above_a_flat_floor_then_met_and_the_tilted_slope_reported_beside() -> None:
    swinging = samples(0.0)
    for sample in swinging:  # from minute 35 a cache holds 25 MB, emptied every fifth minute
        minute = round(sample.at_s / 60)
        sample.services["streams"]["allocated_mb"] += 25.0 if minute >= 35 and minute % 5 else 0.0

    judged = judge(PLAN, swinging, [])

    rss = verdict(judged, "memory slope streams")
    assert rss["value"] == pytest.approx(0.0, abs=0.01) and rss["is_met"] is True
    assert rss["every_sample"] > 20.0  # a line through every sample tilts with where the swing falls
    assert "through every sample" in summary_figures(PLAN, judged)[0]["baseline"]


def test_judge_when_memory_steps_up_and_stays_then_the_floor_rises_and_the_target_is_missed() -> None:
    stepping = samples(0.0)
    for sample in stepping:  # 20 MB taken at minute 35 and kept
        sample.services["streams"]["allocated_mb"] += 20.0 if sample.at_s >= 35 * 60 else 0.0

    rss = verdict(judge(PLAN, stepping, []), "memory slope streams")

    assert rss["value"] > 5.0 and rss["is_met"] is False


def test_judge_when_file_pages_step_up_then_the_memory_slope_is_what_was_allocated() -> None:
    paged_in = samples(0.0)
    for sample in paged_in:  # a shared library's pages read in at minute 12: PSS steps up 140 MB
        sample.services["streams"]["memory_mb"] += 140.0 if sample.at_s >= 12 * 60 else 0.0

    judged = judge(PLAN, paged_in, [])

    assert verdict(judged, "memory slope streams")["is_met"] is True
    assert judged["slopes"]["streams"]["memory_mb_per_h"] > 20.0  # the PSS slope, reported beside it


def test_judge_when_the_service_restarted_then_the_slope_is_the_new_process_alone() -> None:
    judged = judge(PLAN, samples(50.0, restart_at_min=30), [])

    assert verdict(judged, "memory slope streams")["value"] == pytest.approx(0.0, abs=0.01)


@pytest.mark.parametrize(("growth", "is_met"), [(0.0, True), (20.0, False)])
def test_judge_when_parts_accumulate_then_the_bound_is_missed(growth: float, is_met: bool) -> None:
    judged = judge(PLAN, samples(0.0, parts_per_h=growth), [])

    assert verdict(judged, "active parts")["is_met"] is is_met


def test_judge_when_the_last_window_is_slower_then_the_latency_target_is_missed() -> None:
    first = [(600.0 + index, 10.0 + index % 5) for index in range(300)]
    middle = [(1200.0 + index, 12.0) for index in range(300)]
    last = [(3000.0 + index, 20.0 + index % 5) for index in range(600)]

    judged = judge(PLAN, samples(0.0), first + middle + last)

    latency = verdict(judged, "tick-to-signal")
    assert latency["value"] == pytest.approx(24.0 / 14.0, rel=0.01)
    assert latency["is_met"] is False


def test_judge_when_disk_follows_ticks_then_bytes_per_million_and_per_day_at_the_plans_rate() -> None:
    disk = judge(dataclasses.replace(PLAN, rate=400.0), samples(0.0), [])["disk"]

    assert disk["measured_rate_ticks_per_s"] == pytest.approx(500.0)
    assert disk["kafka_mb_per_million_ticks"] == pytest.approx(200.0)
    assert disk["warehouse_gb_per_day"] == pytest.approx(50 * 400 * 86_400 / 1e9)  # a day at the plan's rate


def test_judge_when_engine_caches_fill_and_tracking_stays_flat_then_each_metric_has_its_slope() -> None:
    sampled = samples(0.0)
    for minute, sample in enumerate(sampled):  # the mark cache grows 6 MB an hour; tracked memory swings, no trend
        sample.engine = {
            "MemoryTracking": 200_000_000 + (10_000_000 if minute % 2 else 0),
            "MarkCacheBytes": 1_000_000 + minute * 100_000,
        }
    sampled[30].engine = {}  # a minute the engine could not be read

    engine = judge(PLAN, sampled, [])["slopes"]["warehouse_engine_mb_per_h"]

    assert engine["MarkCacheBytes"] == pytest.approx(6.0)
    assert abs(engine["MemoryTracking"]) < 1.0
    printed = io.StringIO()
    Console(file=printed, width=200).print(report(PLAN, judge(PLAN, sampled, []), {}))
    assert "MarkCacheBytes 6" in printed.getvalue()


def test_judge_when_merged_parts_swing_the_directory_then_the_warehouse_figure_is_its_active_parts() -> None:
    swinging = samples(0.0)
    for minute, sample in enumerate(swinging):  # active parts grow 40 bytes a tick; merges' leftovers come and go
        sample.warehouse_active_bytes = minute * 30_000 * 40
        sample.warehouse_bytes = sample.warehouse_active_bytes + (300_000_000 if minute % 8 < 4 else 0)

    disk = judge(PLAN, swinging, [])["disk"]

    assert disk["warehouse_mb_per_million_ticks"] == pytest.approx(40.0)


def test_simulator_rate_when_set_then_the_simulated_hour_delivers_about_the_rate_asked() -> None:
    from streams.ingest.simulation import SimulatedMarket

    settings = load_settings()
    symbols, midnight_ms, overlap_ms = ["EURUSD", "USDJPY"], 1_764_028_800_000, 1_764_028_800_000 + 13 * 3_600_000
    quiet, busy = (simulator_rate(settings, symbols, 100.0, start, 20.0) for start in (midnight_ms, overlap_ms))
    market = SimulatedMarket(symbols, settings.symbols, quiet, 99, midnight_ms)

    delivered = sum(len(market.advance(100).time_ms) for _ in range(10 * 600)) / (10 * 60)

    assert delivered == pytest.approx(100.0, rel=0.25)
    assert quiet > 2 * busy  # asked more of the simulator at midnight than at the London/New York overlap


def test_signal_latency_when_taken_then_measured_from_the_first_tick_after_the_late_wait() -> None:
    settings = load_settings()
    reader = SignalLatency(settings, threading.Event())
    closing_ms = 1_000 + 1_000 + settings.streams.late_wait_ms  # a 1 s bar starting at 1 s
    # (tick time, Kafka produce time) of EURUSD's ticks; (symbol, closing tick's time, produce time) of the signals
    reader.ticks["EURUSD"] = ([closing_ms - 10, closing_ms + 5, closing_ms + 30], [100, 200, 300])
    reader.signals = [("EURUSD", closing_ms, 207), ("USDJPY", closing_ms, 1)]

    latencies = reader.take(settle_ms=0, keep_ms=10**15)

    assert latencies == [7.0]  # from the tick 5 ms after the close; no tick of USDJPY: not counted
    assert reader.signals == []


def test_make_soak_when_dry_run_then_80_minutes_measured_by_default_and_chaos_runs_the_short_form() -> None:
    def recipe(target: str) -> str:
        return subprocess.run(["make", "-n", "-s", target], cwd=ROOT, capture_output=True, text=True, check=True).stdout

    assert "-m bench.soak --summary" in recipe("soak") and "--minutes" not in recipe("soak")
    assert SoakPlan().minutes - SoakPlan().warmup_minutes == 80  # after the warehouse's ~60 minutes of settling
    assert SoakPlan().rate == 500 and SoakPlan().symbols == 10
    assert "-m bench.soak --minutes 4" in recipe("chaos")
    assert not {"bench.soak", "bench.soak_probes"} & set(benchmarks())


def test_tree_usage_when_another_service_is_a_child_then_it_is_left_out() -> None:
    # A child process stands for a service the supervisor restarted (its child, yet a service of its own).
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        whole = tree_usage(os.getpid())
        alone = tree_usage(os.getpid(), frozenset({child.pid}))
    finally:
        child.kill()
        child.wait()

    assert whole is not None and alone is not None
    assert whole.threads > alone.threads and whole.memory_bytes > alone.memory_bytes


def test_tree_usage_when_max_depth_then_grandchildren_are_left_out() -> None:
    # A child that starts a grandchild stands for Dagster's code server and a run it launched.
    script = (
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)']); "
        "print('ready', flush=True); time.sleep(30)"
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        whole = tree_usage(os.getpid())
        children_only = tree_usage(os.getpid(), max_depth=1)
    finally:
        for process in psutil.Process(child.pid).children():
            process.kill()
        child.kill()
        child.wait()

    assert whole is not None and children_only is not None
    assert whole.processes == children_only.processes + 1
    assert whole.memory_bytes > children_only.memory_bytes


@pytest.mark.parametrize(("peak_mb", "is_met"), [(650.0, True), (900.0, False)])
def test_judge_when_dagster_runs_come_and_go_then_its_own_peak_is_judged_and_runs_apart(
    peak_mb: float, is_met: bool
) -> None:
    taken = samples(0.0)
    for minute, sample in enumerate(taken):
        held = peak_mb - (minute % 2) * 50
        sample.services["orchestration"] = {
            "pid": 7,
            "memory_mb": held,
            "allocated_mb": held - 100,
            "fds": 100,
            "threads": 60,
            "cpu_pct": 5.0,
        }
        sample.runs = {"processes": minute % 3, "memory_mb": 400.0 * (minute % 3)}

    judged = judge(PLAN, taken, [])

    dagster = verdict(judged, "Dagster's code server + webserver + daemon")
    assert dagster["value"] == pytest.approx(peak_mb)
    assert dagster["is_met"] is is_met
    assert judged["slopes"]["dagster_runs"] == {"peak_processes": 2, "peak_memory_mb": 800.0}


def test_publish_when_results_kept_elsewhere_then_readme_table_untouched_and_summary_merged(tmp_path: Path) -> None:
    from bench.soak_report import publish
    from bench.summary import MARKERS

    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{MARKERS[0]}\nthe whole table\n{MARKERS[1]}\n")
    other = {
        "benchmark": "ingest",
        "command": "python -m bench.ingest",
        "exit_code": 0,
        "duration_s": 1.0,
        "load_before": 1.0,
        "load_after": 1.0,
        "finished_at": "2026-01-01T00:00:00+00:00",
    }
    (tmp_path / "summary.json").write_text(
        json.dumps(
            {
                "generated_at": other["finished_at"],
                "machine": "vm",
                "runs": [other],
                "figures": [
                    {
                        "benchmark": "ingest",
                        "figure": "replay",
                        "value": 1.0,
                        "unit": "ticks/s",
                        "baseline": "",
                        "target": "",
                        "is_met": None,
                    }
                ],
            }
        )
    )
    run = {
        "benchmark": "soak",
        "command": "python -m bench.soak",
        "exit_code": 0,
        "machine": "vm",
        "duration_s": 9.0,
        "load_before": 1.0,
        "load_after": 1.0,
        "finished_at": "2026-01-02T00:00:00+00:00",
    }
    figure = {
        "figure": "memory slope execution",
        "value": 4.0,
        "unit": "MB/h",
        "baseline": "",
        "target": "<= 5",
        "is_met": True,
    }

    publish(tmp_path, dict(run), [figure], readme=None)
    assert readme.read_text().count("the whole table") == 1
    merged = json.loads((tmp_path / "summary.json").read_text())
    assert {item["benchmark"] for item in merged["figures"]} == {"ingest", "soak"}

    publish(tmp_path, dict(run), [figure], readme=readme)
    table = readme.read_text()
    assert "the whole table" not in table and "replay" in table and "memory slope execution" in table
