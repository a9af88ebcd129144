"""Execution latency: the in-process decision path, the Kafka hot path, the kill switch.

0. Floors, same run: the disk's 256-byte append + ``fdatasync`` alone, and a plain Kafka
   hop (signal produced in another process -> a plain consumer here) at the same rate.
1. In process (paper broker): from a decoded signal to the broker call returned, with
   the journal fsync on (production) and off (the decision path alone). Signals go round
   EURUSD, USDJPY, EURJPY and XAUUSD, so every conversion (direct, inverse, through USD)
   and a non-FX contract size are in the path. ``--in-process-only`` skips the Kafka rows.
   The signature check's cost, same run: from a signal's bytes to the broker call returned,
   decoded only vs verified (the dataflow's HMAC) and decoded, two services fed in turn.
2. Over Kafka at 1k signals/s: from ``produce()`` of a signal to the paper broker's
   acceptance of its order through the hot loop (plain confluent-kafka), once with the
   account's fence as in production and once without it (the fence's cost).
3. Kill switch: from sending ``halt`` on ``execution.control`` to the HALTED event
   (20 halts, each followed by a resume) in the fenced run: the loop idle, from a connected
   producer and from a new one per command (as the CLI), then while signals stream in.

It starts its own Kafka (Supervisor + KafkaService, free loopback ports, a temp state dir), streams
``--warmup`` seconds untimed first (the broker's JIT), and stops it. Run: python -m bench.execution [--seconds 30]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Producer, TopicPartition
from rich.console import Console
from rich.table import Table

from adapters.bus import Bootstrap, as_principal, make_consumer, make_producer, resolve_bootstrap
from adapters.gcpause import start_gc_freezer
from adapters.signing import signals_key, signed_headers
from tickwave.audit_chain import ChainLink
from tickwave.clock import SystemClock
from tickwave.config import Settings, load_settings
from tickwave.contracts import Direction, Message, OrderAccepted, OrderIntent, RiskEvent, Signal, Tick, decode, encode
from tickwave.topics import EXECUTION, SIGNALS, TICKS, topic_name

# Run as a script, this folder comes first on sys.path and this file would shadow the package.
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from bench.embedded import AUTHENTICATED, PROTOCOLS, bench_settings, embedded_bus, prepare_topics  # noqa: E402
from bench.summary import record  # noqa: E402
from execution.app import build_service  # noqa: E402
from execution.connectors import ControlListener, SignalGate, control_producer, run_hot_loop, send_control  # noqa: E402
from execution.core.broker import Broker, BrokerEvent, BrokerOrder  # noqa: E402
from execution.core.state import Order  # noqa: E402
from execution.fence import AccountFence, Fence  # noqa: E402
from execution.service import ExecutionService, decode_signal  # noqa: E402

console = Console()
WIDE_LIMITS: dict[str, Any] = {
    "max_orders_per_second": 100_000,
    "daily_loss_limit": 1e15,
    "max_gross_exposure": 1e15,
    "signal_ttl_ms": 600_000,
    "max_tick_age_ms": 3_600_000,
}


class TimedBroker:
    """Delegates to the real broker and notes when each submit returned (monotonic ns)."""

    def __init__(self, inner: Broker) -> None:
        self.inner, self.name, self.lookback_ms = inner, inner.name, inner.lookback_ms
        self.returned_ns: dict[str, int] = {}
        self.called_ns: dict[str, int] = {}  # when each submit was called: the broker's own share of the path

    def venue(self) -> str:
        return self.inner.venue()

    def submit(self, intent: OrderIntent) -> list[BrokerEvent]:
        called = time.monotonic_ns()
        events = self.inner.submit(intent)
        if any(isinstance(event, OrderAccepted) for event in events):
            self.returned_ns[intent.signal_id] = time.monotonic_ns()
            self.called_ns[intent.signal_id] = called
        return events

    def cancel(self, order: Order, reason: str) -> list[BrokerEvent]:
        return self.inner.cancel(order, reason)

    def poll(self) -> list[BrokerEvent]:
        return self.inner.poll()

    def on_tick(self, tick: Tick) -> None:
        self.inner.on_tick(tick)

    def orders(self, since_ms: int | None = None) -> Mapping[str, BrokerOrder]:
        return self.inner.orders(since_ms)

    def positions(self) -> Mapping[str, Decimal]:
        return self.inner.positions()

    def retire(self, before_ms: int) -> int:
        return self.inner.retire(before_ms)

    def close(self) -> None:
        self.inner.close()


class HaltWatcher:
    """A publisher that drops audit events but notes when each HALTED event was recorded."""

    def __init__(self) -> None:
        self.halted_ns: dict[str, int] = {}

    def resume_position(self) -> int:
        return 0

    def publish(self, message: Message, key: str, position: int, link: ChainLink | None = None) -> None:
        if isinstance(message, RiskEvent) and message.trading_state == "HALTED" and "[command " in message.detail:
            command_id = message.detail.split("[command ")[1].split("]")[0]
            self.halted_ns.setdefault(command_id, time.monotonic_ns())

    def flush(self, timeout_s: float) -> int:
        return 0


def _signal(index: int, now_ms: int, symbol: str = "EURUSD") -> Signal:
    direction: Direction = "long" if index % 2 == 0 else "short"  # every signal flips the position: one order each
    return Signal(
        signal_id=Signal.make_id("bench", 1, symbol, "1m", index),
        symbol=symbol,
        timeframe="1m",
        bar_start_ms=index,
        direction=direction,
        strength=0.5,
        confidence=0.9,
        model_id="bench",
        model_version=1,
        created_at_ms=now_ms,
    )


def _tick(now_ms: int, symbol: str = "EURUSD") -> Tick:
    return Tick(symbol=symbol, time_ms=now_ms, seq=0, bid=1.09995, ask=1.10005)


# The in-process run's symbols and mids: USD-quoted, USD-based (inverse), a cross (through USD), gold.
MIXED_MIDS = {"EURUSD": 1.1, "USDJPY": 150.0, "EURJPY": 165.0, "XAUUSD": 2300.0}


def _mixed_tick(now_ms: int, symbol: str) -> Tick:
    mid = MIXED_MIDS[symbol]
    return Tick(symbol=symbol, time_ms=now_ms, seq=0, bid=mid * (1 - 1e-5), ask=mid * (1 + 1e-5))


def _percentiles(samples_us: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples_us)
    return (
        statistics.median(ordered),
        ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        ordered[-1],
    )


def _timed_service(
    settings: Settings, publisher: Any, fence: Fence | None = None
) -> tuple[ExecutionService, TimedBroker]:
    service = build_service(settings, publisher, fence=fence)
    timed = TimedBroker(service.broker)
    service.broker = timed
    service.start()
    return service, timed


def in_process(
    root: Path, count: int, fsync: bool, floors: Sequence[DiskFloor] = ()
) -> dict[str, tuple[float, float, float]]:
    """Decide and send ``count`` signals in process; return p50/p99/max in microseconds.

    The signals go in blocks of ``BLOCK``, each followed by a block of every floor's writes,
    so the path and its floors see the disk in the same seconds. Returns the path's figures
    ("path"), its parts ("journal write": the journal's appends before the broker call, the
    shell's; "broker call": the paper venue's ``submit``, its ledger write included; "decision":
    the rest but the fsync, the engine's sizing, gate, submission and apply, the lock and the
    fence) and, with the fsync on, those of its journal's own ``fdatasync`` ("journal sync").
    Each part's percentiles are its own: they do not add up to the path's.
    """
    symbols = list(MIXED_MIDS)
    settings = load_settings(
        state_dir=root / f"inproc-{fsync}",
        market={"hours": "always"},
        execution={"risk": {**WIDE_LIMITS, "allowed_symbols": symbols}, "journal_fsync": fsync},
    )
    service, timed = _timed_service(settings, HaltWatcher())
    syncs_us: list[float] = []
    journal_sync = service.journal.sync

    synced_ns: list[int] = []  # each fdatasync's time while the current signal is decided

    def timed_sync() -> None:
        started = time.monotonic_ns()
        journal_sync()
        synced_ns.append(time.monotonic_ns() - started)
        syncs_us.append(synced_ns[-1] / 1000)

    service.journal.sync = timed_sync  # type: ignore[method-assign]
    appends: list[tuple[int, int]] = []  # (called, returned) of each journal append while a signal is decided
    journal_append_all = service.journal.append_all

    def timed_append_all(messages: Sequence[Message], *, sync: bool = False) -> range:
        called = time.monotonic_ns()
        positions = journal_append_all(messages, sync=sync)
        appends.append((called, time.monotonic_ns()))
        return positions

    service.journal.append_all = timed_append_all  # type: ignore[method-assign]
    stop = threading.Event()
    start_gc_freezer(stop)  # as execution.app.run does
    now_ms = time.time_ns() // 1_000_000
    for symbol in symbols:
        service.handle_tick(_mixed_tick(now_ms, symbol))
    parts: dict[str, list[float]] = {name: [] for name in ("path", "journal write", "broker call", "decision")}
    for index in range(count):
        signal = _signal(index // len(symbols), now_ms, symbols[index % len(symbols)])
        appends.clear()
        synced_ns.clear()
        started = time.monotonic_ns()
        service.handle_signal(signal)
        called, returned = timed.called_ns[signal.signal_id], timed.returned_ns[signal.signal_id]
        # The appends before the broker call are the path's (a journal sync is inside the decision's share).
        journal_ns = sum(end - begin for begin, end in appends if end <= called)
        path_ns = returned - started
        for name, value_ns in (
            ("path", path_ns),
            ("journal write", journal_ns),
            ("broker call", returned - called),
            ("decision", path_ns - journal_ns - sum(synced_ns) - (returned - called)),
        ):
            parts[name].append(value_ns / 1000)
        if (index + 1) % BLOCK == 0:
            for floor in floors:
                floor.sample(BLOCK)
    stop.set()
    service.close()
    figures = {name: _percentiles(found[count // 10 :]) for name, found in parts.items()}  # the first tenth warms up
    if fsync:
        figures["journal sync"] = _percentiles(syncs_us[count // 10 :])
    return figures


def verification_cost(root: Path, count: int) -> dict[str, tuple[float, float, float]]:
    """From a signal's bytes to the broker call returned, decoded only and verified + decoded, in turn (fsync off).

    Two services (own state dirs, same settings) take alternate signals, so both see the
    same seconds of the machine; only the front differs: ``decode_signal`` or the
    ``SignalGate`` (HMAC check, then the same decode). Returns p50/p99/max in microseconds
    of each path ("decoded", "verified") and of each front alone ("decode", "verify + decode").
    """
    symbols = list(MIXED_MIDS)
    services, keys = {}, {}
    for name in ("decoded", "verified"):
        settings = load_settings(
            state_dir=root / f"verify-{name}",
            market={"hours": "always"},
            execution={"risk": {**WIDE_LIMITS, "allowed_symbols": symbols}, "journal_fsync": False},
        )
        services[name] = _timed_service(settings, HaltWatcher())
        keys[name] = signals_key(settings)
    gate = SignalGate(keys["verified"], services["verified"][0])
    stop = threading.Event()
    start_gc_freezer(stop)
    now_ms = time.time_ns() // 1_000_000
    for service, _timed in services.values():
        for symbol in symbols:
            service.handle_tick(_mixed_tick(now_ms, symbol))
    fronts = {"decoded": "decode", "verified": "verify + decode"}
    samples: dict[str, list[float]] = {name: [] for name in (*fronts, *fronts.values())}
    for index in range(count):
        value = encode(_signal(index // len(symbols), now_ms, symbols[index % len(symbols)]))
        headers = signed_headers(keys["verified"], value)  # as the dataflow sends it
        for name in ("decoded", "verified") if index % 2 == 0 else ("verified", "decoded"):
            service, timed = services[name]
            started = time.monotonic_ns()
            signal = gate.admit(value, headers, "bench") if name == "verified" else decode_signal(value)
            admitted = time.monotonic_ns()
            assert signal is not None
            service.handle_signal(signal)
            samples[name].append((timed.returned_ns[signal.signal_id] - started) / 1000)
            samples[fronts[name]].append((admitted - started) / 1000)
    stop.set()
    for service, _timed in services.values():
        service.close()
    return {name: _percentiles(found[count // 10 :]) for name, found in samples.items()}


def _us(figures: tuple[float, float, float]) -> tuple[str, str, str]:
    return tuple(f"{value:.1f}" for value in figures)  # type: ignore[return-value]


def over_kafka(
    root: Path,
    bus: Settings,
    label: str,
    seconds: float,
    rate: int,
    fsync: bool = True,
    is_fenced: bool = False,
) -> dict[str, Any]:
    """Stream signals at ``rate``/s into the hot loop; time produce -> accepted (fenced: as ``app.run`` builds it).

    The loop, its control listener and its fence run as the execution principal (on an authenticated
    broker); the signals and halts are sent as the super user.
    """
    settings = bench_settings(
        bus,
        root / label,
        f"bench-{label}.",
        market={"hours": "always"},
        execution={
            "risk": WIDE_LIMITS,
            "consumer_group": f"bench-{label}",
            "journal_fsync": fsync,
        },
    )
    prepare_topics(settings)
    bootstrap = resolve_bootstrap(settings)
    execution = as_principal(settings, EXECUTION)
    execution_bootstrap = resolve_bootstrap(execution)
    watcher = HaltWatcher()
    fence = AccountFence(execution, execution_bootstrap) if is_fenced else None
    if fence is not None:
        fence.claim()
    service, timed = _timed_service(settings, watcher, fence)
    producer = make_producer(bootstrap, "latency")
    now_ms = time.time_ns() // 1_000_000
    producer.produce(topic_name(settings, TICKS), key=b"EURUSD", value=encode(_tick(now_ms)))
    producer.flush(10)
    stop = threading.Event()
    start_gc_freezer(stop)  # as execution.app.run does
    control = ControlListener(execution, execution_bootstrap, service, stop)
    control.start()
    control.ready.wait(30)
    measured: dict[str, Any] = {}
    driver = threading.Thread(
        target=_drive,
        args=(settings, bootstrap, producer, timed, watcher, seconds, rate, measured, stop, is_fenced),
        daemon=True,
    )
    driver.start()
    run_hot_loop(execution, execution_bootstrap, service, stop)
    driver.join(30)
    control.join(10)
    service.close()
    latencies = measured["latencies"]
    return {
        "sent": measured["sent"],
        "accepted": len(latencies),
        "latency": _percentiles(latencies),
        "halts": measured["halts"],
    }


def _drive(
    settings: Settings,
    bootstrap: Bootstrap,
    producer: Any,
    timed: TimedBroker,
    watcher: HaltWatcher,
    seconds: float,
    rate: int,
    measured: dict[str, Any],
    stop: threading.Event,
    time_halts: bool,
) -> None:
    """Warm up, stream signals at ``rate``, then time 20 halts if ``time_halts``; stop the loop."""
    signals_topic = topic_name(settings, SIGNALS)
    key = signals_key(settings)  # signed as the dataflow signs: the hot loop decides no other signal
    try:
        index = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until the loop has joined and accepts orders
            warm = _signal(index, time.time_ns() // 1_000_000)
            value = encode(warm)
            producer.produce(signals_topic, key=b"EURUSD", value=value, headers=signed_headers(key, value))
            producer.flush(5)
            index += 1
            time.sleep(0.05)
            if warm.signal_id in timed.returned_ns:
                break
        # The stream comes from another process: a pacing loop here would hold the GIL the hot loop needs.
        context = multiprocessing.get_context("spawn")
        with context.Pool(1) as pool:
            ticks_topic = topic_name(settings, TICKS)
            sent_ns = pool.apply(_stream, (bootstrap, signals_topic, ticks_topic, index, seconds, rate, key))
        time.sleep(1.0)
        measured["sent"] = len(sent_ns)
        measured["latencies"] = [
            (timed.returned_ns[sid] - sent) / 1000 for sid, sent in sent_ns.items() if sid in timed.returned_ns
        ]
        measured["halts"] = {}
        if time_halts:
            operator = control_producer(bootstrap)  # an operator's tool that keeps its producer connected
            send_control(settings, bootstrap, "status", reason="bench", clock=SystemClock(), producer=operator)
            measured["halts"][IDLE] = _time_halts(settings, bootstrap, watcher, operator)
            measured["halts"][NEW_PRODUCER] = _time_halts(settings, bootstrap, watcher, None)
            # Then while signals stream in: a halt read during a batch waits for the orders decided before it.
            first_index = index + len(sent_ns)
            with context.Pool(1) as pool:
                decided = len(timed.returned_ns)
                streaming = pool.apply_async(
                    _stream, (bootstrap, signals_topic, ticks_topic, first_index, HALTS_STREAM_S, rate, key)
                )
                deadline = time.monotonic() + 60
                while len(timed.returned_ns) < decided + rate // 2 and time.monotonic() < deadline:
                    time.sleep(0.05)  # until the stream runs (the pool's process starts in a second or two)
                measured["halts"][STREAMING] = _time_halts(settings, bootstrap, watcher, operator)
                streaming.get()
    finally:
        stop.set()


HALTS = 20  # halts timed in each case, each followed by a resume
HALTS_STREAM_S = 10.0  # the stream the halts of the streaming case are sent into (they take about 3 s)
IDLE, NEW_PRODUCER, STREAMING = "idle", "idle, new producer", "signals streaming"


def _time_halts(
    settings: Settings, bootstrap: Bootstrap, watcher: HaltWatcher, producer: Producer | None
) -> list[float]:
    """Send ``HALTS`` halts, each followed by a resume; return each one's time from send to HALTED (us).

    ``producer``: the operator's, connected; None makes a new one per command, as the CLI does.
    """
    halts = []
    for _ in range(HALTS):
        started = time.monotonic_ns()
        command = send_control(settings, bootstrap, "halt", reason="bench", clock=SystemClock(), producer=producer)
        while command.command_id not in watcher.halted_ns:
            time.sleep(0.0005)
        halts.append((watcher.halted_ns[command.command_id] - started) / 1000)
        send_control(settings, bootstrap, "resume", reason="bench", clock=SystemClock(), producer=producer)
        time.sleep(0.1)
    return halts


def _stream(
    bootstrap: Bootstrap, topic: str, ticks_topic: str, first_index: int, seconds: float, rate: int, key: bytes = b""
) -> dict[str, int]:
    """Produce ``seconds x rate`` signals at a steady pace (signed with ``key``); return each one's send time (ns)."""
    producer = make_producer(bootstrap, "latency")
    producer.list_topics(topic, timeout=10)
    # The first send of an idempotent producer waits for its producer id: do it before the clock runs.
    producer.produce(
        topic.rsplit(".", 1)[0] + ".ticks", key=b"EURUSD", value=encode(_tick(time.time_ns() // 1_000_000))
    )
    producer.flush(30)
    sent_ns: dict[str, int] = {}
    interval_ns = 1_000_000_000 // rate
    next_ns = time.monotonic_ns()
    for index in range(first_index, first_index + int(seconds * rate)):
        signal = _signal(index, time.time_ns() // 1_000_000)
        value = encode(signal)
        headers = signed_headers(key, value) if key else None  # as the dataflow: signed before produce()
        delay_ns = next_ns - time.monotonic_ns()
        if delay_ns > 0:
            time.sleep(delay_ns / 1e9)
        sent_ns[signal.signal_id] = time.monotonic_ns()
        producer.produce(topic, key=b"EURUSD", value=value, headers=headers)
        producer.poll(0)
        next_ns += interval_ns
    producer.flush(10)
    return sent_ns


FSYNC_OFF_TARGET_US = 30  # the in-process decision path's p99, journal fsync off
FSYNC_ON_TARGET = 1.3  # the fsync-on path's p99 against the disk's append + fdatasync p99, same run
# The fsync-off path's parts, each timed on its own (their percentiles do not add up to the path's).
PATH_PARTS = (
    ("decision", "the engine: sizing, the gate, the submission and its apply; the lock, the fence"),
    ("journal write", "the signal, intent and OrderSubmitted encoded, framed and written (one pwrite)"),
    ("broker call", "the paper venue's submit: acceptance, fill, its ledger's space check and write"),
)
BLOCK = 250  # signals, then as many writes of each disk floor: the fsync-on path and its floors alternate
_FLOOR_RECORD = b"x" * 256


class DiskFloor:
    """A 256-byte write + ``fdatasync`` in the journal's directory: the floor of every fsync row.

    ``in_place``: into zero-filled space written beforehand (as the journal writes), so the
    ``fdatasync`` flushes data only; otherwise an append that grows the file each time.
    Timed in blocks between the path's own (:func:`in_process`): this VM's disk p99 swings
    from 185 to 280 us between runs minutes apart, so a floor timed before the path
    compared the path with another minute's disk.
    """

    def __init__(self, root: Path, count: int, in_place: bool = False) -> None:
        root.mkdir(parents=True, exist_ok=True)
        name = "floor-in-place.bin" if in_place else "floor.bin"
        self.in_place = in_place
        self._fd = os.open(root / name, os.O_RDWR | os.O_CREAT | (0 if in_place else os.O_APPEND), 0o644)
        if in_place:
            os.pwrite(self._fd, bytes(len(_FLOOR_RECORD) * count), 0)
            os.fsync(self._fd)
        self._written = 0
        self.samples_us: list[float] = []

    def sample(self, count: int) -> None:
        """Time ``count`` more writes."""
        for _ in range(count):
            started = time.monotonic_ns()
            if self.in_place:
                os.pwrite(self._fd, _FLOOR_RECORD, len(_FLOOR_RECORD) * self._written)
            else:
                os.write(self._fd, _FLOOR_RECORD)
            os.fdatasync(self._fd)
            self.samples_us.append((time.monotonic_ns() - started) / 1000)
            self._written += 1

    def percentiles(self) -> tuple[float, float, float]:
        """Return p50/p99/max in microseconds, without the first tenth (as the path's)."""
        return _percentiles(self.samples_us[len(self.samples_us) // 10 :])

    def close(self) -> None:
        os.close(self._fd)


def kafka_floor(root: Path, bus: Settings, seconds: float, rate: int) -> dict[str, Any]:
    """Signals at ``rate``/s from another process to a plain consumer here: the floor of the Kafka rows."""
    settings = bench_settings(bus, root / "floor", "bench-floor.")
    prepare_topics(settings)
    bootstrap = resolve_bootstrap(settings)
    signals_topic = topic_name(settings, SIGNALS)
    consumer = make_consumer(bootstrap, "bench-floor", "latency")
    consumer.assign([TopicPartition(signals_topic, tp.id, 0) for tp in _topic_partitions(consumer, signals_topic)])
    received_ns: dict[str, int] = {}
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            message = consumer.poll(0.05)
            if message is not None and message.error() is None:
                received_ns[decode(message.value(), Signal).signal_id] = time.monotonic_ns()

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        sent_ns = pool.apply(_stream, (bootstrap, signals_topic, topic_name(settings, TICKS), 0, seconds, rate))
    time.sleep(1.0)
    stop.set()
    reader.join(5)
    consumer.close()
    latencies = [(received_ns[sid] - sent) / 1000 for sid, sent in sent_ns.items() if sid in received_ns]
    return {"sent": len(sent_ns), "received": len(latencies), "latency": _percentiles(latencies)}


def _topic_partitions(consumer: Any, topic: str) -> list[Any]:
    return list(consumer.list_topics(topic, timeout=10).topics[topic].partitions.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0, help="stream length of each Kafka row")
    parser.add_argument("--warmup", type=float, default=10.0, help="untimed stream first (the broker's JIT)")
    parser.add_argument("--rate", type=int, default=1000, help="signals per second")
    parser.add_argument("--in-process", type=int, default=5000, help="signals for the in-process run")
    parser.add_argument("--no-fsync", action="store_true", help="Kafka runs without the journal fsync")
    parser.add_argument("--in-process-only", action="store_true", help="only the disk floor and in-process rows")
    parser.add_argument(
        "--security-protocol",
        choices=PROTOCOLS,
        default=AUTHENTICATED,
        help="the broker's: the authenticated default (SASL_PLAINTEXT), SASL_SSL, or PLAINTEXT to compare",
    )
    args = parser.parse_args()
    load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="tickwave-bench-execution-") as directory:
        root = Path(directory)
        table = Table("path", "p50 (us)", "p99 (us)", "max (us)", "note", title="execution latency")
        append_floor = DiskFloor(root / "disk", args.in_process)
        in_place_floor = DiskFloor(root / "disk", args.in_process, in_place=True)
        try:
            on = in_process(root, args.in_process, True, (append_floor, in_place_floor))
        finally:
            append_floor.close()
            in_place_floor.close()
        off = in_process(root, args.in_process, False)
        (append_p50, append_p99, append_max), in_place = append_floor.percentiles(), in_place_floor.percentiles()
        table.add_row(
            "disk: 256-byte append + fdatasync alone",
            f"{append_p50:.0f}",
            f"{append_p99:.0f}",
            f"{append_max:.0f}",
            "the floor of the fsync rows (this machine's disk), the file growing; "
            f"timed in blocks of {BLOCK} between the path's",
        )
        table.add_row(
            "disk: 256-byte write in place + fdatasync alone",
            *(f"{value:.0f}" for value in in_place),
            "into preallocated zeros, as the journal writes; same blocks",
        )
        p50, p99, worst = on["path"]
        ratio = p99 / append_p99
        table.add_row(
            "in-process: signal decoded -> broker returned",
            f"{p50:.0f}",
            f"{p99:.0f}",
            f"{worst:.0f}",
            f"journal fsync on (production): {ratio:.2f}x the append floor's p99",
        )
        record(
            "decision path, journal fsync on (production): p99",
            p99,
            "us",
            baseline=f"disk append + fdatasync p99 {append_p99:.0f} us ({ratio:.2f}x); in place {in_place[1]:.0f} us",
            target=f"<= {FSYNC_ON_TARGET}x the disk's append p99 ({FSYNC_ON_TARGET * append_p99:.0f} us)",
            is_met=ratio <= FSYNC_ON_TARGET,
        )
        table.add_row(
            "  of which the journal's own fdatasync",
            *(f"{value:.0f}" for value in on["journal sync"]),
            "inside the path above; the rest: decision, journal write, broker call",
        )
        for part, _note in PATH_PARTS:
            table.add_row(f"  of which {part}", *_us(on[part]), "as below, after (and before) the fdatasync")
        p50, p99, worst = off["path"]
        table.add_row(
            "in-process: signal decoded -> broker returned",
            f"{p50:.0f}",
            f"{p99:.0f}",
            f"{worst:.0f}",
            f"journal fsync off: decision + journal write + paper broker; {p99 / FSYNC_OFF_TARGET_US:.2f}x the "
            f"{FSYNC_OFF_TARGET_US} us target at p99",
        )
        for part, note in PATH_PARTS:
            table.add_row(f"  of which {part}", *_us(off[part]), note)
        record(
            "decision path, journal fsync off: p99",
            p99,
            "us",
            baseline=f"p50 {p50:.0f} us; p99 of its parts: "
            + ", ".join(f"{part} {off[part][1]:.0f} us" for part, _note in PATH_PARTS),
            target=f"<= {FSYNC_OFF_TARGET_US} us",
            is_met=p99 <= FSYNC_OFF_TARGET_US,
        )
        cost = verification_cost(root, args.in_process)
        for name, note in (
            ("decoded", "fsync off; bytes decoded, no signature check (before the check existed)"),
            ("verified", "fsync off; the dataflow's HMAC checked, then decoded (production)"),
        ):
            table.add_row(f"in-process: signal bytes -> broker returned, {name}", *_us(cost[name]), note)
        table.add_row("  of which the decode alone", *_us(cost["decode"]), "")
        table.add_row("  of which the check and the decode", *_us(cost["verify + decode"]), "")
        ratio = cost["verified"][1] / cost["decoded"][1]
        record(
            "decision path with the signal's signature check: p99 ratio to without",
            ratio,
            "x",
            baseline=f"without {cost['decoded'][1]:.0f} us, with {cost['verified'][1]:.0f} us (p99, same run)",
            target="<= 1.1x",
            is_met=ratio <= 1.1,
        )
        if args.in_process_only:
            console.print(table)
            return
        with embedded_bus(args.security_protocol) as bus:
            halts: dict[str, list[float]] = {}
            over_kafka(root, bus, "warmup", args.warmup, args.rate)  # the broker's JVM starts cold
            floor = kafka_floor(root, bus, args.seconds, args.rate)
            p50, p99, worst = floor["latency"]
            table.add_row(
                "Kafka alone: signal produced -> consumed",
                f"{p50:.0f}",
                f"{p99:.0f}",
                f"{worst:.0f}",
                f"{floor['received']}/{floor['sent']} at {args.rate}/s: floor of the Kafka rows",
            )
            for is_fenced in (True, False):
                name = "confluent, fenced" if is_fenced else "confluent"  # the figures' names in bench/README.md
                result = over_kafka(
                    root,
                    bus,
                    "fenced" if is_fenced else "unfenced",
                    args.seconds,
                    args.rate,
                    fsync=not args.no_fsync,
                    is_fenced=is_fenced,
                )
                p50, p99, worst = result["latency"]
                note = (
                    f"{result['accepted']}/{result['sent']} at {args.rate}/s, fsync {'off' if args.no_fsync else 'on'}"
                )
                if is_fenced:
                    note += "; the account's fence (a Kafka transaction before each broker call), as in production"
                table.add_row(
                    f"Kafka ({name}): signal produced -> order accepted",
                    f"{p50:.0f}",
                    f"{p99:.0f}",
                    f"{worst:.0f}",
                    note,
                )
                record(
                    f"over Kafka ({name}): signal produced -> order accepted, p99",
                    p99,
                    "us",
                    baseline=f"Kafka alone p99 {floor['latency'][1]:.0f} us",
                    target="",
                )
                halts.update(result["halts"])
            notes = {
                IDLE: "the operator's producer connected; the hot loop idle",
                STREAMING: f"the operator's producer connected; {args.rate} signals/s streaming in",
                NEW_PRODUCER: "a new producer per command, as the CLI sends it (its connection and login included)",
            }
            for case, found in halts.items():
                p50, p99, worst = _percentiles(found)
                table.add_row(
                    f"kill switch ({case}): halt sent -> HALTED",
                    f"{p50:.0f}",
                    f"{p99:.0f}",
                    f"{worst:.0f}",
                    f"{len(found)} halts, fenced; {notes[case]}",
                )
                record(
                    f"kill switch ({case}): halt sent -> HALTED, max",
                    worst / 1000,
                    "ms",
                    baseline=f"p50 {p50 / 1000:.1f} ms; Kafka alone p99 {floor['latency'][1] / 1000:.1f} ms",
                    target="" if case == NEW_PRODUCER else "< 10 ms",
                    is_met=None if case == NEW_PRODUCER else worst / 1000 < 10,
                )
    console.print(table)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load average before/after: {load_before} / {load}"
    )


if __name__ == "__main__":
    main()
