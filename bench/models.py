"""Models: training time on 1M rows x 30 features (2 cores), and single-row inference, ONNX Runtime vs native.

In one run, on the same synthetic data and the same trained models:

- training: one ``XGBoostDirectionModel.fit`` and one ``LightGBMDirectionModel.fit`` with
  the default ``models`` settings (300 rounds, depth 4, 3 classes, ``n_jobs=2``); with
  ``--lifecycle``, also the whole ``DirectionModel.train`` (walk-forward folds + final
  fit + backtests);
- the ensemble of the two (weights 0.6 / 0.4), served two ways: one ONNX graph
  (``LoadedModel.predict_with_confidence``, what the dataflow calls: blended
  probabilities and the confidence from one call) against one session per member,
  blended and scored in numpy (the alternative);
- export: ONNX conversion and the parity check on 10k holdout rows;
- inference, one row at a time, single-threaded on both sides: ONNX Runtime through
  ``streams.inference.LoadedModel.predict`` (what the dataflow calls) and the bare
  ``session.run``, against XGBoost's ``inplace_predict`` and ``predict_proba``. The
  methods alternate in chunks of 500 calls, so load from other processes on the machine
  falls on all of them alike. Batches of 1,000 rows are timed too;
- shadow scoring: the CPU time per tick of the flow's steps (decode and validate, then
  the per-group step: bars, features, the champion's inference and signals) over ticks
  arriving at 5,000 ticks/s of event time (10 symbols, 1 s and 1 min bars), with the
  champion alone and with one challenger scored in shadow, alternating runs in the same
  process. Timed after the features are warm, without Bytewax's scheduling and the
  sinks: the denominator is the smallest the flow can have, so the overhead is an upper
  bound.

Targets: fit of 1M rows x 30 features under 120 s per model; single-row p99
under 100 us for one model and under 250 us for the ensemble; one challenger adds under
25 % to the flow's CPU per tick at 5k ticks/s.

Run: .venv/bin/python -m bench.models [--rows 1000000] [--features 30] [--lifecycle] [--shadow-seconds 60]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from models.dataset import Dataset

# Run as a script, this file's folder comes first on sys.path, and this file's name would
# shadow the models package: drop the folder; the project's modules are imported in main().
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

CHUNK = 500
SHADOW_SYMBOLS = ("EURUSD", "USDJPY", "GBPUSD", "USDCHF", "AUDUSD", "NZDUSD", "USDCAD", "EURGBP", "EURJPY", "XAUUSD")
TICKS_PER_S = 5_000
WARM_S = 55  # 50 bars warm a series up: the timed part predicts on every 1 s bar close


def synthetic(rows: int, features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Features with a weak linear signal; labels down/flat/up at roughly 40/20/40."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(size=(rows, features)).astype(np.float32)
    weights = rng.normal(size=features) / np.sqrt(features)
    score = matrix @ weights * 0.5 + rng.normal(size=rows)
    low, high = np.quantile(score, [0.4, 0.6])
    return matrix, np.where(score < low, 0, np.where(score > high, 2, 1)).astype(np.int64)


def as_dataset(matrix: np.ndarray, labels: np.ndarray) -> Dataset:
    """Wrap the matrix as one symbol's 1-minute rows, with a random-walk mid for the backtests."""
    from models.dataset import Dataset, LabelSpec

    rows = len(labels)
    names = tuple(f"f{index}" for index in range(matrix.shape[1]))
    mid = 1.1 * np.exp(np.cumsum(np.random.default_rng(1).normal(0, 1e-4, rows + 1)))
    starts = 1_700_000_040_000 + np.arange(rows, dtype=np.int64) * 60_000
    frame = pd.DataFrame(
        {
            "symbol": "EURUSD",
            "bar_start_ms": starts,
            "label_end_ms": starts + 5 * 60_000,
            "label": labels,
            "mid_close": mid[:-1],
            "next_mid_close": mid[1:],
            "bid_close": mid[:-1] - 0.00005,
            "ask_close": mid[:-1] + 0.00005,
        }
    )
    frame = pd.concat([frame, pd.DataFrame(matrix, columns=list(names))], axis=1)
    return Dataset(frame, names, "bench", LabelSpec(5, 1.0), "1m", int(starts[0]), int(starts[-1]) + 60_000)


def latencies(calls: dict[str, Callable[[np.ndarray], object]], rows: np.ndarray, total: int) -> dict[str, np.ndarray]:
    """Time each call on single rows, alternating methods every ``CHUNK`` calls; microseconds."""
    timings: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():  # warm-up
        for index in range(200):
            call(rows[index : index + 1])
    for start in range(0, total, CHUNK):
        for name, call in calls.items():
            for index in range(start, start + CHUNK):
                row = rows[index % len(rows) : index % len(rows) + 1]
                began = time.perf_counter_ns()
                call(row)
                timings[name].append((time.perf_counter_ns() - began) / 1000)
    return {name: np.array(values) for name, values in timings.items()}


def session_of(onnx_bytes: bytes) -> object:
    """A single-threaded ONNX Runtime session, as the streams build one."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def shadow_models(names: tuple[str, ...], schema_hash: str) -> tuple[object, object]:
    """A default-size XGBoost champion and LightGBM challenger on the flow's model inputs, served on 1 s bars."""
    import json
    from dataclasses import replace

    from models.lgbm import LightGBMDirectionModel
    from models.xgb import XGBoostDirectionModel
    from tickwave.config import ModelsSettings
    from tickwave.modeling import CHALLENGER, SignalRules, artifact_from_onnx

    matrix, labels = synthetic(20_000, len(names), seed=3)
    settings = ModelsSettings(n_jobs=2)
    about = {"timeframe": "1s", "symbols": json.dumps(list(SHADOW_SYMBOLS))}
    xgboost, lightgbm = XGBoostDirectionModel(settings, SignalRules()), LightGBMDirectionModel(settings, SignalRules())
    champion = xgboost.export_onnx(xgboost.fit(matrix, labels), names, schema_hash, about)
    challenger = lightgbm.export_onnx(lightgbm.fit(matrix, labels), names, schema_hash, about)
    return (
        artifact_from_onnx("bench_shadow", 1, champion),
        replace(artifact_from_onnx("bench_shadow", 2, challenger), role=CHALLENGER),
    )


def shadow_ticks(seconds: int) -> list[bytes]:
    """Encoded ticks of ``SHADOW_SYMBOLS`` at 5,000 ticks/s of event time, warm-up first (a gentle random walk)."""
    from tickwave.contracts import Tick, encode

    rng = np.random.default_rng(5)
    mids = {symbol: 1.0 + index for index, symbol in enumerate(SHADOW_SYMBOLS)}
    ticks = []
    for index in range((WARM_S + seconds) * TICKS_PER_S):
        symbol = SHADOW_SYMBOLS[index % len(SHADOW_SYMBOLS)]
        mid = mids[symbol] = mids[symbol] * (1 + rng.normal(0, 2e-5))
        ticks.append(
            encode(
                Tick(
                    symbol=symbol,
                    time_ms=1_700_000_040_000 + index * 1000 // TICKS_PER_S,
                    seq=index,
                    bid=round(mid * 0.99999, 6),
                    ask=round(mid * 1.00001, 6),
                    volume=1.0,
                )
            )
        )
    return ticks


def flow_cpu_us_per_tick(raw: list[bytes], artifacts: list[object]) -> tuple[float, int]:
    """CPU microseconds per tick of the flow's steps after warm-up, and the predictions made (all roles)."""
    from streams.features import FeatureSpec
    from streams.flow import BarConsequences, GroupLogic, group_state
    from streams.inference import Inference
    from streams.routing import GroupLayout
    from tickwave.clock import ManualClock
    from tickwave.config import StreamsSettings
    from tickwave.contracts import Tick
    from tickwave.modeling import SignalRules
    from tickwave.validation import ValidationRules, check_raw

    class Provider:
        def champions(self) -> list[object]:
            return list(artifacts)

    spec = FeatureSpec()
    now_ms = 1_700_000_040_000 + len(raw) * 1000 // TICKS_PER_S + 1000
    clock = ManualClock(now_ms)
    settings = StreamsSettings(timeframes=("1s", "1m"), late_wait_ms=200, close_on_wall_clock=False)
    inference = Inference(Provider(), spec.schema_hash, clock, refresh_s=3600.0)  # type: ignore[arg-type]
    consequences = BarConsequences(spec, inference, SignalRules(), clock)
    logic = GroupLogic(group_state(GroupLayout(1), None), settings, clock, consequences)
    rules = ValidationRules(known_symbols=frozenset(SHADOW_SYMBOLS))
    warm = WARM_S * TICKS_PER_S
    predictions = 0

    def feed(part: list[bytes]) -> int:
        made = 0
        for start in range(0, len(part), 50):  # 10 ms of ticks a batch
            checked = [check_raw(message, rules, now_ms) for message in part[start : start + 50]]
            for output in logic.on_batch([tick for tick in checked if isinstance(tick, Tick)])[0]:
                made += len(output.predictions)
        return made

    feed(raw[:warm])
    started = time.process_time()
    predictions = feed(raw[warm:])
    return (time.process_time() - started) / (len(raw) - warm) * 1e6, predictions


def shadow_overhead(seconds: int, repeats: int = 2) -> tuple[float, float, int, int]:
    """Flow CPU per tick with the champion alone and with one challenger (best of ``repeats``, alternating)."""
    from streams.features import FeatureSpec

    spec = FeatureSpec()
    champion, challenger = shadow_models(tuple(spec.model_names), spec.schema_hash)
    raw = shadow_ticks(seconds)
    alone: list[float] = []
    shadowed: list[float] = []
    counts = [0, 0]
    for _ in range(repeats):
        cpu, counts[0] = flow_cpu_us_per_tick(raw, [champion])
        alone.append(cpu)
        cpu, counts[1] = flow_cpu_us_per_tick(raw, [champion, challenger])
        shadowed.append(cpu)
    return min(alone), min(shadowed), counts[0], counts[1]


def report_shadow(seconds: int, console: Console) -> None:
    """Measure, print and record the shadow scoring overhead."""
    from bench.summary import record

    load_before = os.getloadavg()[0]
    alone_us, shadowed_us, alone_predictions, shadowed_predictions = shadow_overhead(seconds)
    overhead = (shadowed_us / alone_us - 1) * 100
    load_after = os.getloadavg()[0]
    quiet = "" if max(load_before, load_after) <= 2 else " (not quiet: > 2)"
    table = Table(
        "measure", "figure", title=f"shadow scoring, load average {load_before:.1f} -> {load_after:.1f}{quiet}"
    )
    table.add_row(
        f"flow CPU per tick at {TICKS_PER_S:,} ticks/s, {len(SHADOW_SYMBOLS)} symbols ({seconds} s timed): "
        "champion alone -> with one challenger in shadow",
        f"{alone_us:.2f} -> {shadowed_us:.2f} us/tick ({overhead:+.1f} %; {alone_predictions:,} -> "
        f"{shadowed_predictions:,} predictions)",
    )
    console.print(table)
    record(
        "shadow scoring of one challenger: flow CPU per tick at 5k ticks/s",
        overhead,
        "%",
        baseline=f"champion alone {alone_us:.2f} us/tick, with the challenger {shadowed_us:.2f} us/tick",
        target="< 25 %",
        is_met=overhead < 25,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=30)
    parser.add_argument("--samples", type=int, default=20_000, help="single-row calls per method")
    parser.add_argument("--lifecycle", action="store_true", help="also time the whole walk-forward train")
    parser.add_argument("--shadow-seconds", type=int, default=60, help="timed event seconds of the shadow measure")
    parser.add_argument("--shadow-only", action="store_true", help="only the shadow scoring measure")
    arguments = parser.parse_args()
    from bench.summary import record

    if arguments.shadow_only:
        report_shadow(arguments.shadow_seconds, Console())
        return
    from models.dataset import LABELS
    from models.ensemble import EnsembleClassifier, EnsembleDirectionModel
    from models.export import parity_check
    from models.lgbm import LightGBMDirectionModel
    from models.xgb import XGBoostDirectionModel
    from streams.inference import LoadedModel
    from tickwave.config import ModelsSettings
    from tickwave.modeling import ModelArtifact, SignalRules, artifact_from_onnx, blend, ensemble_confidence

    console = Console()
    load_before = os.getloadavg()[0]

    matrix, labels = synthetic(arguments.rows, arguments.features)
    settings = ModelsSettings(n_jobs=2)
    model = XGBoostDirectionModel(settings, SignalRules())
    started = time.perf_counter()
    classifier = model.fit(matrix, labels)
    fit_s = time.perf_counter() - started
    started = time.perf_counter()
    lightgbm_model = LightGBMDirectionModel(settings, SignalRules())
    lightgbm = lightgbm_model.fit(matrix, labels)
    lightgbm_fit_s = time.perf_counter() - started
    lifecycle_s = None
    if arguments.lifecycle:
        started = time.perf_counter()
        model.train(as_dataset(matrix, labels))
        lifecycle_s = time.perf_counter() - started

    names = tuple(f"f{index}" for index in range(arguments.features))
    holdout = matrix[-10_000:]
    started = time.perf_counter()
    onnx_bytes = model.export_onnx(classifier, names, "bench")
    artifact = ModelArtifact("bench", 1, onnx_bytes, names, "bench", LABELS)
    parity = parity_check(classifier.predict_proba(holdout), artifact, holdout, settings.parity_tolerance)
    export_s = time.perf_counter() - started

    # The ensemble: one graph, and one session per member (each member's own export).
    weights = np.array([0.6, 0.4])
    ensemble = EnsembleClassifier(("xgboost", "lightgbm"), (classifier, lightgbm), weights)
    about = {"timeframe": "1m", "symbols": '["EURUSD"]'}
    started = time.perf_counter()
    ensemble_bytes = EnsembleDirectionModel(settings, SignalRules()).export_onnx(ensemble, names, "bench", about)
    ensemble_artifact = artifact_from_onnx("bench_ensemble", 1, ensemble_bytes)
    ensemble_parity = parity_check(
        ensemble.predict_proba(holdout), ensemble_artifact, holdout, settings.parity_tolerance
    )
    ensemble_export_s = time.perf_counter() - started
    one_graph = LoadedModel(ensemble_artifact)
    lightgbm_bytes = lightgbm_model.export_onnx(lightgbm, names, "bench")
    lightgbm_session = LoadedModel(ModelArtifact("bench_lgbm", 1, lightgbm_bytes, names, "bench", LABELS)).session
    member_sessions = [(session_of(onnx_bytes), "probabilities"), (lightgbm_session, "probabilities")]

    def several_sessions(row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        members = np.stack(
            [
                np.asarray(member.run([output], {"features": row})[0], dtype=np.float64)
                for member, output in member_sessions
            ]
        )
        return blend(members, weights), ensemble_confidence(members, weights)

    agree = np.abs(several_sessions(holdout[:1000])[0] - one_graph.predict_batch(holdout[:1000])).max()

    classifier.set_params(n_jobs=1)  # single-threaded on both sides
    booster = classifier.get_booster()
    loaded = LoadedModel(artifact)
    session, input_name = loaded.session, loaded.input_name
    calls: dict[str, Callable[[np.ndarray], object]] = {
        "onnxruntime, LoadedModel.predict (streams)": loaded.predict,
        "onnxruntime, session.run": lambda row: session.run(["probabilities"], {input_name: row}),
        "xgboost, booster.inplace_predict": lambda row: booster.inplace_predict(row),
        "xgboost, XGBClassifier.predict_proba": classifier.predict_proba,
        "lightgbm ONNX, session.run": lambda row: lightgbm_session.run(["probabilities"], {"features": row}),
        "ensemble, one graph: LoadedModel.predict_with_confidence (streams)": one_graph.predict_with_confidence,
        "ensemble, one session per member + numpy blend and confidence": several_sessions,
    }
    single = latencies(calls, holdout, arguments.samples)
    batch = holdout[:1000]
    batch_ms = {}
    batch_calls: dict[str, Callable[[], object]] = {
        "onnxruntime": lambda: session.run(["probabilities"], {input_name: batch}),
        "xgboost inplace_predict": lambda: booster.inplace_predict(batch),
    }
    for name, call in batch_calls.items():
        call()
        began = time.perf_counter()
        for _ in range(50):
            call()
        batch_ms[name] = (time.perf_counter() - began) / 50 * 1000
    load_after = os.getloadavg()[0]

    title = (
        f"models, {arguments.rows:,} rows x {arguments.features} features, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {load_before:.1f} -> {load_after:.1f}"
    )
    table = Table("measure", "figure", title=title)
    table.add_row("xgboost fit (300 rounds, depth 4, 3 classes, hist, n_jobs=2)", f"{fit_s:.1f} s")
    table.add_row("lightgbm fit (300 rounds, depth 4 / 16 leaves, 3 classes, n_jobs=2)", f"{lightgbm_fit_s:.1f} s")
    if lifecycle_s is not None:
        label = f"whole train ({settings.folds} walk-forward folds + final fit + backtests)"
        table.add_row(label, f"{lifecycle_s:.1f} s")
    table.add_row("ONNX export + parity check on 10k rows", f"{export_s:.2f} s (max |diff| {parity:.1e})")
    table.add_row(
        "ensemble: one-graph export + parity on 10k rows",
        f"{ensemble_export_s:.2f} s (max |diff| {ensemble_parity:.1e}; vs several sessions {agree:.1e})",
    )
    for name, values in single.items():
        p50, p99 = np.percentile(values, [50, 99])
        table.add_row(f"single row: {name}", f"p50 {p50:.0f} us, p99 {p99:.0f} us, mean {values.mean():.0f} us")
    for name, value in batch_ms.items():
        table.add_row(f"batch of 1,000 rows: {name}", f"{value:.2f} ms")
    console.print(table)
    report_shadow(arguments.shadow_seconds, console)

    size = f"{arguments.rows:,} x {arguments.features}"
    for name, seconds in (("xgboost", fit_s), ("lightgbm", lightgbm_fit_s)):
        record(f"{name} fit, {size}", seconds, "s", target="< 120 s", is_met=seconds < 120)
    one_p99 = float(np.percentile(single["onnxruntime, LoadedModel.predict (streams)"], 99))
    native_p99 = float(np.percentile(single["xgboost, booster.inplace_predict"], 99))
    record(
        "single-row p99, one model (ONNX Runtime, LoadedModel.predict)",
        one_p99,
        "us",
        baseline=f"xgboost inplace_predict p99 {native_p99:.0f} us",
        target="< 100 us",
        is_met=one_p99 < 100,
    )
    graph_p99 = float(np.percentile(single["ensemble, one graph: LoadedModel.predict_with_confidence (streams)"], 99))
    sessions_p99 = float(np.percentile(single["ensemble, one session per member + numpy blend and confidence"], 99))
    record(
        "single-row p99, ensemble (one ONNX graph with confidence)",
        graph_p99,
        "us",
        baseline=f"one session per member p99 {sessions_p99:.0f} us",
        target="< 250 us",
        is_met=graph_p99 < 250,
    )


if __name__ == "__main__":
    main()
