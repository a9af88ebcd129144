"""Tick-to-signal latency of the production flow, at a steady tick rate with a model loaded.

The flow runs as ``tickwave streams run`` does (its own process, production sinks: the
topics, with the loader inserting the warehouse rows from a process of its own,
recovery on). It serves a model of the size ``tickwave train`` makes by default
(``_model``) from a file, looked up as production looks up the champion: a query of the
warehouse's model registry every ``streams.model_refresh_s`` (``RegistryLookupProvider``;
the signals-only variant skips the query). One minute of history
is replayed first so the features are warm; then ticks are produced at ``rate`` per
second, stamped with the wall clock. For every 1 s bar's signal, latency = time the
signal is consumed - time the tick that closed the bar was produced (the first tick of
that symbol at or after bar end + the late wait).
"""

from __future__ import annotations

import bisect
import gc
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import TopicPartition

from adapters.bus import Bootstrap, as_principal, make_consumer, make_producer, resolve_bootstrap, shared_environment
from adapters.gcpause import start_gc_freezer
from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from app.services.supervisor import Supervisor
from app.services.warehouse import WarehouseService
from bench.embedded import bench_settings, prepare_topics
from bench.streams_sinks import counting_sinks
from models.registry import ModelRegistry
from streams.features import FeatureSpec
from streams.loader import start_loader, stop_loader
from tickwave.clock import SystemClock
from tickwave.config import Settings, load_settings
from tickwave.contracts import Signal, Tick, decode, encode
from tickwave.modeling import ModelArtifact
from tickwave.topics import DATAFLOW

ROOT = Path(__file__).resolve().parents[1]
WAIT_MS = 50
SYMBOLS = [
    ("EURUSD", 1.085),
    ("GBPUSD", 1.27),
    ("USDCHF", 0.88),
    ("AUDUSD", 0.655),
    ("NZDUSD", 0.60),
    ("USDCAD", 1.36),
    ("EURGBP", 0.855),
    ("USDJPY", 151.25),
    ("EURJPY", 163.5),
    ("XAUUSD", 2300.0),
]  # the default symbol registry: ten 1 s signals per second


class FileModelProvider:
    """Serves the pickled artifact at ``path`` (the benchmark's stand-in for the registry)."""

    def __init__(self, path: str) -> None:
        self.artifact: ModelArtifact = pickle.loads(Path(path).read_bytes())

    def champions(self) -> list[ModelArtifact]:
        return [self.artifact]


class RegistryLookupProvider(FileModelProvider):
    """The file's model, each lookup paying what the registry provider pays: the registry query."""

    def __init__(self, path: str, settings: Settings) -> None:
        super().__init__(path)
        self.settings = settings
        self.registry: ModelRegistry | None = None

    def champions(self) -> list[ModelArtifact]:
        if self.registry is None:
            self.registry = ModelRegistry(self.settings)
        self.registry.champion(self.settings.models.registry_id)  # the same warehouse query; no champion is registered
        return [self.artifact]


def latency_flow(model_path: str, sinks: str = "production") -> object:
    """The flow with the benchmark's model (imported by ``python -m bytewax.run``).

    ``sinks="signals-only"`` discards every output but the signals topic, to separate the
    flow's own latency from the warehouse's.
    """
    from streams.app import flow_for, production_sinks

    settings = load_settings()
    start_gc_freezer(threading.Event())  # as the production runner does
    if sinks == "production":
        return flow_for(settings, SystemClock(), tail=True, provider=RegistryLookupProvider(model_path, settings))
    provider = FileModelProvider(model_path)
    counts: dict[str, int] = {}
    others = counting_sinks(counts, but=frozenset({"signals"}))
    # The production signals publisher; every other output only counted.
    return flow_for(
        settings, SystemClock(), tail=True, provider=provider, sinks=replace(production_sinks(settings), **others)
    )


def _model(path: Path, settings: Settings) -> None:
    """The served model: fitted and exported as ``tickwave train`` does, at its default size (``models`` settings).

    Fitted on synthetic features (only its cost matters here): 300 rounds x 3 classes of
    depth-4 trees by default, ~830 KiB of ONNX; one row costs ~37 us in ONNX Runtime where
    the tests' small model (8 rounds, depth 3) costs ~8 us.
    """
    from models.xgb import XGBoostDirectionModel
    from tickwave.modeling import SignalRules, artifact_from_onnx

    spec = FeatureSpec()
    rng = np.random.default_rng(7)
    features = rng.normal(size=(20_000, len(spec.model_names))).astype(np.float32)
    noise = rng.normal(size=(2, len(features)))
    labels = (features[:, 0] + noise[0] > 0).astype(int) + (features[:, 1] + noise[1] > 0.5).astype(int)
    rules = SignalRules(settings.streams.entry_probability, settings.streams.min_edge)
    trainer = XGBoostDirectionModel(settings.models, rules)
    model = trainer.fit(features, labels)
    # Served on the flow's first timeframe (1 s by default: ten signals per second) for every symbol.
    about = {"timeframe": settings.streams.timeframes[0], "symbols": json.dumps([symbol for symbol, _ in SYMBOLS])}
    onnx_bytes = trainer.export_onnx(model, spec.model_names, spec.schema_hash, about)
    path.write_bytes(pickle.dumps(artifact_from_onnx(settings.models.registry_id, 1, onnx_bytes)))


def tick_to_signal_latency(
    bus: Settings,
    rate: int = 5000,
    seconds: float = 60.0,
    sinks: str = "production",
    warmup_s: float = 15.0,
    plot: Path | None = None,
    engine: str = "bytewax",
    figures: dict[str, float] | None = None,
) -> str:
    """Run the flow at ``rate`` ticks/s on ``bus``'s broker and report the latency (``plot``: each second vs steal).

    The flow runs as the dataflow's principal and the loader as its own on an authenticated broker,
    as under ``tickwave up``. ``engine="loop"`` runs the plain-loop contender (``bench.streams_relay``:
    the flow's own step without Bytewax) in the flow's place, with the same sinks. ``figures``, when
    given, receives the end-to-end ``p50_ms`` and ``p99_ms``.
    """
    state = Path(tempfile.mkdtemp(prefix="tw-bench-latency-"))
    prefix = f"lat-{engine}-{sinks}-{state.name[-8:]}."  # topics of this run only: the next never replays its ticks
    settings = bench_settings(bus, state, prefix, clickhouse={"port": 0, "native_port": 0})
    env = {
        **os.environ,
        "TICKWAVE_STATE_DIR": str(state),
        **shared_environment(as_principal(settings, DATAFLOW)),
        "TICKWAVE_CLICKHOUSE_PORT": "0",
        "TICKWAVE_CLICKHOUSE_NATIVE_PORT": "0",
        "TICKWAVE_STREAMS_LATE_WAIT_MS": str(WAIT_MS),
    }
    prepare_topics(settings)
    bootstrap = resolve_bootstrap(settings)
    supervisor, warehouse = Supervisor(settings), WarehouseService(settings)
    supervisor.start(warehouse)
    migrate(settings)
    model_path = state / "model.pkl"
    _model(model_path, settings)
    command = (
        [
            sys.executable,
            "-m",
            "bytewax.run",
            f"bench.streams_latency:latency_flow('{model_path}', '{sinks}')",
            "-r",
            str(_recovery(state)),
            "-s",
            str(settings.streams.snapshot_interval_s),
            "-b",
            "0",
        ]
        if engine == "bytewax"
        else [sys.executable, "-m", "bench.streams_relay", str(model_path), sinks]
    )
    # A session of its own, as `tickwave up` runs the flow.
    flow = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
    # Production: the records the flow publishes are inserted by the loader, as `tickwave streams run` does.
    loader = start_loader(settings) if sinks == "production" else None
    try:
        label = "Bytewax flow" if engine == "bytewax" else "plain loop (bench.streams_relay)"
        label += ", signals topic only" if sinks == "signals-only" else ", production sinks"
        model = f"model of {settings.models.n_estimators} rounds x 3 classes, depth {settings.models.max_depth}"
        result = f"{label}: " + _measure(bootstrap, prefix, rate, seconds, warmup_s, model, plot, figures)
    finally:
        flow.terminate()
        flow.wait(30)
        if loader is not None:
            stop_loader(loader, drain=False)
    try:
        if loader is not None:
            client = connect(settings)
            stored = client.query("SELECT count() FROM ticks").result_rows[0][0]
            result += f"\n  (the loader stored {stored:,} ticks in the warehouse meanwhile)"
        return result
    finally:
        supervisor.stop(warehouse)


def _recovery(state: Path) -> Path:
    from bytewax.recovery import init_db_dir

    path = state / "recovery"
    path.mkdir()
    init_db_dir(path, 1)  # type: ignore[no-untyped-call]  # bytewax's _bytewax.pyi has no annotations
    return path


def _read_signals(bootstrap: Bootstrap, topic: str, stop: Any, results: Any) -> None:
    """Read ``topic`` until ``stop``; put [(value, received_ns)] on ``results``."""
    os.setsid()  # a session of its own, as the execution process has under `tickwave up` (Linux autogroups)
    consumer = make_consumer(bootstrap, "latency-check", "latency")
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
    received: list[tuple[bytes, int]] = []
    while not stop.is_set():
        message = consumer.poll(0.05)
        if message is not None and not message.error():
            received.append((message.value(), time.time_ns()))
    consumer.close()
    results.put(received)


def _sample_steal(stop: Any, results: Any) -> None:
    """Every 10 ms until ``stop``: (time ns, steal, all) in ticks of the machine's CPUs, from /proc/stat (Linux).

    Steal is the time the hypervisor ran something else while this VM's CPUs had work to
    run: no process here can use it, and a hot path stalls for it.
    """
    samples: list[tuple[int, int, int]] = []
    try:
        while not stop.is_set():
            # Opened each time: a buffered file's seek(0) re-reads its own stale buffer, not the kernel's counters.
            with open("/proc/stat", "rb") as stat:
                fields = stat.readline().split()  # cpu user nice system idle iowait irq softirq steal ...
            samples.append((time.time_ns(), int(fields[8]), sum(int(field) for field in fields[1:9])))
            stop.wait(0.01)
    except OSError:  # not Linux: nothing to report
        samples = []
    results.put(samples)


def _counters_between(
    samples: list[tuple[int, int, int]], times: list[int], from_ms: int, to_ms: int
) -> tuple[int, int]:
    """(steal, all) ticks between the first sample at or after ``from_ms`` and the last at or before ``to_ms``.

    ``times``: the samples' times, in order (bisected).
    """
    first = bisect.bisect_left(times, from_ms * 1_000_000)
    last = bisect.bisect_right(times, to_ms * 1_000_000) - 1
    if not 0 <= first < last:
        return 0, 0
    return samples[last][1] - samples[first][1], samples[last][2] - samples[first][2]


def steal_report(
    samples: list[tuple[int, int, int]], by_second: dict[int, list[float]], late: list[int], start_ms: int, end_ms: int
) -> str:
    """The host's CPU steal over the measured window, and how the late seconds fall against it.

    A second "had steal" when the hypervisor took CPU time from 100 ms before its bars'
    close (end + the late wait) to 60 ms after (/proc/stat counts in 10 ms ticks).
    """
    window = [sample for sample in samples if start_ms * 1_000_000 <= sample[0] <= end_ms * 1_000_000]
    if len(window) < 2 or window[-1][2] == window[0][2]:
        return "host CPU steal: not measured (no /proc/stat, or its counters did not move)"
    share = (window[-1][1] - window[0][1]) / max(1, window[-1][2] - window[0][2])
    times = [sample[0] for sample in window]
    stolen = {
        start
        for start in by_second
        if _counters_between(window, times, start + 1000 + WAIT_MS - 100, start + 1060 + WAIT_MS)[0]
    }
    calm = [value for start, values in by_second.items() if start not in stolen for value in values]
    calm_p99 = f"{np.percentile(calm, 99):.1f} ms" if calm else "-"
    return (
        f"host CPU steal (the hypervisor ran others on this VM's CPUs): {share:.1%} of the CPU time; "
        f"{len(stolen)} of {len(by_second)} seconds had steal around their close, and "
        f"{len(stolen.intersection(late))} of the {len(late)} late seconds were among them; "
        f"p99 over the {len(by_second) - len(stolen)} seconds without: {calm_p99}"
    )


def plot_seconds(path: Path, slowest_by_second: dict[int, float], steal_samples: list[tuple[int, int, int]]) -> None:
    """Each second's slowest signal above the host's CPU steal in that second (one PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    starts = sorted(slowest_by_second)
    times = [sample[0] for sample in steal_samples]

    def steal_share(start: int) -> float:  # over the second that ends at this bar's close
        stolen, counted = _counters_between(steal_samples, times, start + WAIT_MS, start + 1000 + WAIT_MS)
        return 100.0 * stolen / max(1, counted)

    elapsed = [(start - starts[0]) / 1000 for start in starts]
    figure, (top, bottom) = pyplot.subplots(2, 1, figsize=(10, 5), sharex=True)
    slowest = [slowest_by_second[start] for start in starts]
    top.bar(elapsed, slowest, width=1.0, color=["tab:red" if value >= 10 else "tab:blue" for value in slowest])
    top.axhline(10, color="black", linewidth=0.8, linestyle="--")
    top.set_ylabel("slowest signal (ms)")
    top.set_title("tick-to-signal latency per second (red: 10 ms or more) and the host's CPU steal")
    bottom.bar(elapsed, [steal_share(start) for start in starts], width=1.0, color="tab:orange")
    bottom.set_ylabel("CPU steal (% of the VM)")
    bottom.set_xlabel("seconds into the measured window")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    pyplot.close(figure)


def _measure(
    bootstrap: Bootstrap,
    prefix: str,
    rate: int,
    seconds: float,
    warmup_s: float,
    model: str,
    plot: Path | None = None,
    figures: dict[str, float] | None = None,
) -> str:
    producer = make_producer(bootstrap, "live")  # as `tickwave ingest` sends live ticks
    # Random-walk steps drawn up front as Python floats: numpy scalars in the pacing loop made
    # every price a numpy float, whose arithmetic is several times slower than a float's.
    count = 40_000 + 2 * rate * int(seconds + warmup_s)  # the history's ticks, then the live ones twice over
    steps = iter(np.random.default_rng(3).normal(0, 2e-5, count).tolist())
    mids = {symbol: price for symbol, price in SYMBOLS}
    # symbol -> tick times (ms) and when each was produced (ns): flat arrays, so this process
    # (the load generator) builds no heap of tuples for its garbage collector to walk while
    # it paces ticks (its full collections had taken one of the two cores for tens of ms).
    produced: dict[str, tuple[array[int], array[int]]] = {symbol: (array("q"), array("q")) for symbol, _ in SYMBOLS}

    def tick(symbol: str, time_ms: int, seq: int) -> Tick:
        mids[symbol] *= 1 + next(steps, 0.0)
        mid = mids[symbol]
        return Tick(symbol=symbol, time_ms=time_ms, seq=seq, bid=mid * (1 - 1e-5), ask=mid * (1 + 1e-5))

    # The signals are read in a process of their own, as the execution process would: a
    # thread here would wait for the GIL this process's pacing loop holds.
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    reader = context.Process(target=_read_signals, args=(bootstrap, f"{prefix}signals", stop, results), daemon=True)
    reader.start()
    steal_stop, steal_results = context.Event(), context.Queue()
    sampler = context.Process(target=_sample_steal, args=(steal_stop, steal_results), daemon=True)
    sampler.start()
    # One minute of history at full speed: the 1 s features warm up (50 bars).
    history_start = time.time_ns() // 1_000_000 - 62_000
    for step in range(0, 61_000, 20):
        for symbol, _price in SYMBOLS:
            producer.produce(f"{prefix}ticks", encode(tick(symbol, history_start + step, 0)), key=symbol.encode())
        producer.poll(0)
    producer.flush(30)
    time.sleep(3.0)
    # Live ticks, stamped with the wall clock: the first ``warmup_s`` bring the broker's JIT and
    # the flow to a steady state and are not measured.
    interval = len(SYMBOLS) / rate
    live_start_ms = time.time_ns() // 1_000_000 + int(warmup_s * 1000)
    deadline = time.monotonic() + warmup_s + seconds
    next_at = time.monotonic()
    last_ms, number = -1, 0  # ticks of one symbol in the same millisecond get seq 0, 1, ...
    gc.freeze()  # what exists now is never collected again; the loop below allocates no lasting objects
    while time.monotonic() < deadline:
        now_ns = time.time_ns()
        time_ms = now_ns // 1_000_000
        number = number + 1 if time_ms == last_ms else 0
        last_ms = time_ms
        for symbol, _price in SYMBOLS:
            producer.produce(f"{prefix}ticks", encode(tick(symbol, time_ms, number)), key=symbol.encode())
            times_ms, produced_ns = produced[symbol]
            times_ms.append(time_ms)
            produced_ns.append(time.time_ns())
        producer.poll(0)
        next_at += interval
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    producer.flush(10)
    time.sleep(2.0)
    stop.set()
    steal_stop.set()
    end_ms = time.time_ns() // 1_000_000
    received = [(decode(value, Signal), received_ns) for value, received_ns in results.get(timeout=120)]
    steal_samples = steal_results.get(timeout=30)
    reader.join(10)
    sampler.join(10)
    total_ms, in_flow_ms, publish_ms = [], [], []
    by_second: dict[int, list[float]] = {}  # bar start -> its signals' latencies (ten symbols close together)
    for signal, received_ns in received:
        if signal.timeframe != "1s" or signal.bar_start_ms < live_start_ms:
            continue
        times_ms, produced_ns = produced[signal.symbol]
        index = bisect.bisect_left(times_ms, signal.bar_start_ms + 1000 + WAIT_MS)
        if index < len(times_ms):
            closing_ns = produced_ns[index]
            total_ms.append((received_ns - closing_ns) / 1e6)
            in_flow_ms.append(signal.created_at_ms - closing_ns / 1e6)
            publish_ms.append(received_ns / 1e6 - signal.created_at_ms)
            by_second.setdefault(signal.bar_start_ms, []).append(total_ms[-1])
    if not total_ms:
        return "tick-to-signal latency: no live signals received (check the flow's log)"

    if figures is not None:
        figures.update(p50_ms=float(np.percentile(total_ms, 50)), p99_ms=float(np.percentile(total_ms, 99)))
    slowest_by_second = {start: max(values) for start, values in by_second.items()}
    if plot is not None and steal_samples:
        plot_seconds(plot, slowest_by_second, steal_samples)
    late = sorted(start for start, slowest in slowest_by_second.items() if slowest >= 10.0)
    # The second of its minute each late bar started at (the bar of second 59 closes with the 1 min bars).
    late_at = ", ".join(f":{start // 1000 % 60:02d}" for start in late)
    late_at = f"; their bars started at second {late_at} of the minute" if late else ""

    def summary(values: list[float]) -> str:
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return f"p50 {p50:.1f} / p90 {p90:.1f} / p99 {p99:.1f} / max {max(values):.1f} ms"

    return (
        f"tick-to-signal latency at {rate:,} ticks/s over {len(SYMBOLS)} symbols, {seconds:.0f} s after a "
        f"{warmup_s:.0f} s warm-up ({len(total_ms):,} signals, {model}):\n"
        f"  closing tick produced -> signal consumed: {summary(total_ms)}\n"
        f"  of which closing tick produced -> signal step (ms clock): {summary(in_flow_ms)}\n"
        f"  of which signal step -> signal consumed (ms clock): {summary(publish_ms)}\n"
        f"  seconds whose slowest signal took 10 ms or more: {len(late)} of {len(slowest_by_second)} "
        f"(the ten symbols' signals of one second share its stalls, so ~6 signals of one bad second decide p99)"
        f"{late_at}\n"
        f"  {steal_report(steal_samples, by_second, late, live_start_ms, end_ms)}"
    )
