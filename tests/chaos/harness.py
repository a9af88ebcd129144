"""Chaos: kill -9 every service at random during a replay and a live simulated market, then check nothing was lost.

``make chaos`` runs ``python -m tests.chaos.harness`` (long); ``tests/chaos/test_chaos.py``
runs a short version in ``make test``. Steps: ``tickwave up`` (with the supervisor) in a
state dir of its own on free ports; the sample replayed and a model trained and promoted
on it (as the demo does); then a live simulated market streams while services (broker,
warehouse, dataflow, its loader, execution, audit loader) are killed with SIGKILL at
random, the warehouse is frozen (SIGSTOP) for a while and the broker is restarted
(SIGTERM). The supervisor restarts each one; the time until its record is back and its
health ``ok`` is its recovery time. Then, once everything caught up:

- every tick the broker acknowledged (every valid tick on the ``ticks`` topic) is in
  ``ticks`` exactly once (``FINAL``), or in ``quarantine`` with a reason;
- every closed 1 min bar is in ``bars_1m`` once, with the tick count of its ticks;
- every signal was decided once: at most one order per signal in the journal and at the
  paper broker, and journal = broker = warehouse for orders and fills;
- nothing is in ``quarantine`` without a reason.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from adapters.endpoints import free_port
from app.services.probes import health_of
from app.services.registry import service_by_name
from app.services.supervisor import Supervisor
from tickwave.config import Settings, load_settings

console = Console()
TARGETS = ("kafka", "warehouse", "streams", "loader", "execution", "audit")


@dataclass
class ChaosPlan:
    """How hard to shake: kills per service, the warehouse freeze and the live market's length."""

    kills_per_service: int = 3
    warehouse_freeze_s: float = 30.0
    live_s: float = 240.0
    seed: int = 26
    settle_s: float = 10.0  # the warehouse's counts unchanged this long: the platform has settled


@dataclass
class ChaosResult:
    """What happened and what was checked."""

    recoveries: dict[str, list[float]] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    failure: BaseException | None = None  # what stopped the shaking thread


def chaos_settings(
    state_dir: Path,
    *,
    is_orchestrated: bool = False,
    brokers: int = 1,
    broker_heap_mb: int | None = None,
    reconciliation_window_s: float | None = None,
) -> Settings:
    """A state dir and ports of its own, a fast but patient supervisor, and the demo's execution settings.

    ``is_orchestrated``: run Dagster too (its schedules and sensors), as ``make soak`` does.
    ``brokers``: the embedded Kafka's nodes; a cluster's free ports are picked once and kept
    (a single node keeps fixed ones, so that its clients find it again after a restart).
    ``reconciliation_window_s``: how far back a periodic reconciliation compares orders, and
    with it how long execution keeps an ended order in memory (the soak shortens it, so that
    an hour shows the level execution's memory keeps).

    The demo's: the paper broker at any hour, driven by the 1 s signals of the model trained
    on the sample's 1 s bars. With the default (1 min signals), every signal would be denied as
    the wrong timeframe, no order placed, and the one-order-per-signal checks would hold vacuously.
    """
    from app.demo import demo_settings

    return demo_settings(
        load_settings(
            state_dir=state_dir,
            kafka={
                "brokers": brokers,
                "port": free_port() if brokers == 1 else 0,
                "controller_port": free_port() if brokers == 1 else 0,
                **({"heap_mb": broker_heap_mb} if broker_heap_mb else {}),
            },
            clickhouse={"port": free_port(), "native_port": free_port()},
            # Dagster took over 210 s to answer on a 2-core VM at load 19: patient, as the supervisor is.
            orchestration={"enabled": is_orchestrated, "start_timeout_s": 600.0},
            supervision={"backoff_initial_s": 0.5, "backoff_max_s": 5.0, "max_restarts": 100, "check_interval_s": 0.5},
            execution={
                "journal_segment_mb": 1,  # the journal sealed a few times a run, between the kills
                **({"reconciliation": {"window_s": reconciliation_window_s}} if reconciliation_window_s else {}),
            },
        )
    )


def _pid(settings: Settings, target: str) -> int | None:
    name = "streams" if target == "loader" else target
    endpoint = Supervisor(settings).endpoint(name)
    if endpoint is None:
        return None
    if target != "loader":
        return endpoint.pid
    try:
        children = psutil.Process(endpoint.pid).children()
    except psutil.Error:
        return None
    for child in children:
        try:
            if "load" in child.cmdline() and child.status() != psutil.STATUS_ZOMBIE:
                return child.pid
        except psutil.Error:  # exited (or a zombie) between the listing and the look
            continue
    return None


def _healthy(settings: Settings, target: str) -> bool:
    name = "streams" if target == "loader" else target
    endpoint = Supervisor(settings).endpoint(name)
    if endpoint is None:
        return False
    service = service_by_name(settings, name)
    if not health_of(settings, service, endpoint.address).is_ok:
        return False
    return target != "loader" or _pid(settings, "loader") is not None


def _wait_healthy(settings: Settings, target: str, timeout_s: float = 180) -> int:
    """Wait until ``target`` runs and reports ok; return its pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = _pid(settings, target)
        if pid is not None and _healthy(settings, target):
            return pid
        time.sleep(0.25)
    raise AssertionError(f"{target} was not healthy within {timeout_s:.0f} s")


def wait_recovered(settings: Settings, target: str, old_pid: int, started: float, timeout_s: float = 180) -> float:
    """Wait until ``target`` runs again under a new pid and reports ok; return the seconds since ``started``."""
    deadline = started + timeout_s
    while time.monotonic() < deadline:
        pid = _pid(settings, target)
        if pid is not None and pid != old_pid and _healthy(settings, target):
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"{target} did not recover within {timeout_s:.0f} s")


def shake(settings: Settings, plan: ChaosPlan, stop: threading.Event, result: ChaosResult) -> None:
    """Kill each target ``kills_per_service`` times in a random order, freeze the warehouse, restart the broker."""
    try:
        _shake(settings, plan, stop, result)
    except BaseException as exc:  # reported by run_chaos on the main thread
        result.failure = exc


def _shake(settings: Settings, plan: ChaosPlan, stop: threading.Event, result: ChaosResult) -> None:
    rng = random.Random(plan.seed)
    schedule = [target for target in TARGETS for _ in range(plan.kills_per_service)]
    rng.shuffle(schedule)
    gap_s = max(1.0, plan.live_s / (len(schedule) + 2))
    for target in schedule:
        if stop.wait(rng.uniform(0.3, 1.0) * gap_s):
            return
        pid = _wait_healthy(settings, target)  # a broker kill also takes its clients down for a while
        started = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        result.recoveries.setdefault(target, []).append(wait_recovered(settings, target, pid, started))
        console.print(f"  kill -9 {target} (pid {pid}): back in {result.recoveries[target][-1]:.1f} s")
    warehouse = _wait_healthy(settings, "warehouse")
    if plan.warehouse_freeze_s > 0:
        console.print(f"  warehouse frozen (SIGSTOP) for {plan.warehouse_freeze_s:.0f} s")
        os.kill(warehouse, signal.SIGSTOP)
        time.sleep(plan.warehouse_freeze_s)
        os.kill(warehouse, signal.SIGCONT)
    broker = _wait_healthy(settings, "kafka")
    if broker:
        started = time.monotonic()
        os.kill(broker, signal.SIGTERM)  # an orderly restart of the broker
        result.recoveries.setdefault("kafka (restart)", []).append(wait_recovered(settings, "kafka", broker, started))
        console.print(f"  broker restarted: back in {result.recoveries['kafka (restart)'][-1]:.1f} s")


def _topic_tick_ids(settings: Settings) -> set[tuple[str, int, int]]:
    """Every tick the broker acknowledged: the whole ``ticks`` topic, read to its end."""
    from confluent_kafka import Consumer, TopicPartition

    from adapters.bus import consumer_config, resolve_admin
    from tickwave.contracts import Tick, decode
    from tickwave.errors import ContractError
    from tickwave.topics import TICKS, topic_name

    topic = topic_name(settings, TICKS)
    # As the super user: the broker is the authenticated default.
    config = consumer_config(resolve_admin(settings), f"chaos-{time.time_ns()}", **{"enable.partition.eof": True})
    consumer = Consumer(config)
    ids: set[tuple[str, int, int]] = set()
    try:
        partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
        ended: set[int] = set()
        while len(ended) < len(partitions):
            for message in consumer.consume(10_000, 1.0):
                if message.error() is not None:
                    ended.add(message.partition())
                    continue
                try:
                    tick = decode(message.value(), Tick)
                except ContractError:
                    continue
                ids.add((tick.symbol, tick.time_ms, tick.seq))
    finally:
        consumer.close()
    return ids


def _tick_ids_of(letters: list[tuple[str, str]]) -> set[tuple[str, int, int]]:
    """The ids of the ticks among quarantined messages (raw bytes as UTF-8 or base64; other input is skipped)."""
    import base64

    from tickwave.contracts import Tick, decode
    from tickwave.errors import ContractError

    ids: set[tuple[str, int, int]] = set()
    for raw, encoding in letters:
        try:
            tick = decode(base64.b64decode(raw) if encoding == "base64" else raw.encode("utf-8"), Tick)
        except (ContractError, ValueError):
            continue
        ids.add((tick.symbol, tick.time_ms, tick.seq))
    return ids


def wait_quiet(settings: Settings, settle_s: float = 10.0, timeout_s: float = 240, poll_s: float = 1.0) -> None:
    """Wait until every service is healthy and the warehouse's counts have not moved for ``settle_s``.

    Looked at every ``poll_s``: a count that moved, or a service not healthy, starts the ``settle_s`` again.
    """
    from adapters.warehouse.client import connect

    deadline = time.monotonic() + timeout_s
    previous: tuple[int, ...] | None = None
    since = 0.0  # when ``previous`` was first read
    while time.monotonic() < deadline:
        if all(_healthy(settings, target) for target in TARGETS):
            client = connect(settings)
            try:
                counts = tuple(
                    int(client.command(f"SELECT count() FROM {table}"))
                    for table in ("ticks", "bars_1m", "signals", "orders", "fills")
                )
            finally:
                client.close()
            if counts != previous:
                previous, since = counts, time.monotonic()
            elif time.monotonic() - since >= settle_s:
                return
        else:
            previous = None
        time.sleep(poll_s)
    raise AssertionError("the platform did not settle after the chaos")


def _wait_audit_caught_up(settings: Settings, timeout_s: float = 180) -> None:
    """Wait (bounded) for the audit loader's cursor lag to reach 0: under load it pauses past the settle window."""
    from adapters.bus import resolve_admin
    from adapters.health import group_lag
    from tickwave.topics import ORDERS_EVENTS, topic_name

    group = f"{settings.execution.consumer_group}-audit"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lags = group_lag(resolve_admin(settings), group, topic_name(settings, ORDERS_EVENTS))
        if all(lag == 0 for lag in lags.values()):
            return
        time.sleep(0.5)
    console.print(f"[yellow]the audit loader still lags after {timeout_s:.0f} s: {lags}[/]")


def check_everything(settings: Settings) -> dict[str, Any]:
    """Run every invariant; return the figures (raises AssertionError naming the first one broken)."""
    from adapters.warehouse.client import connect
    from execution.app import instance_dir
    from execution.brokers.paper import LEDGER_NAME
    from execution.core.engine import Engine, replay
    from execution.core.limits import RiskLimits
    from execution.core.sizing import SizingPolicy
    from execution.journal import JOURNAL_NAME, Journal
    from tickwave.clock import SystemClock
    from tickwave.contracts import OrderFilled, OrderSubmitted
    from tickwave.instruments import registry

    acknowledged = _topic_tick_ids(settings)
    _wait_audit_caught_up(settings)
    client = connect(settings)
    try:
        rows = client.query("SELECT symbol, toUnixTimestamp64Milli(time_ms), seq FROM ticks FINAL").result_rows
        stored = {(symbol, int(time_ms), int(seq)) for symbol, time_ms, seq in rows}
        letters = client.query("SELECT raw, raw_encoding FROM quarantine FINAL").result_rows
        no_reason = int(client.command("SELECT count() FROM quarantine FINAL WHERE reason = ''"))
        bar_rows = client.query(
            "SELECT symbol, toUnixTimestamp64Milli(start_ms), tick_count FROM bars_1m FINAL"
        ).result_rows
        signal_ids = {row[0] for row in client.query("SELECT signal_id FROM signals FINAL").result_rows}
        order_rows = client.query("SELECT client_order_id, status, filled_lots FROM orders FINAL").result_rows
        fill_rows = client.query("SELECT fill_id, client_order_id FROM fills FINAL").result_rows
    finally:
        client.close()
    quarantined = len(letters)
    lost = acknowledged - stored - _tick_ids_of(letters)
    assert not lost, f"{len(lost)} acknowledged ticks are neither stored nor quarantined, e.g. {sorted(lost)[:3]}"
    assert len(rows) == len(stored), f"{len(rows) - len(stored)} ticks stored twice under FINAL"
    assert no_reason == 0, f"{no_reason} dead letters without a reason"

    per_minute = Counter((symbol, time_ms - time_ms % 60_000) for symbol, time_ms, _seq in stored)
    last_minute = {symbol: max(start for s, start in per_minute if s == symbol) for symbol, _ in per_minute}
    bars = Counter()  # type: Counter[tuple[str, int]]
    bar_ticks = {}
    for symbol, start_ms, tick_count in bar_rows:
        bars[(symbol, int(start_ms))] += 1
        bar_ticks[(symbol, int(start_ms))] = int(tick_count)
    closed = {key: count for key, count in per_minute.items() if key[1] < last_minute[key[0]]}
    wrong_bars = {key: (count, bar_ticks.get(key)) for key, count in closed.items() if bar_ticks.get(key) != count}
    assert not wrong_bars, f"{len(wrong_bars)} closed minutes without their bar: {list(wrong_bars.items())[:5]}"
    assert max(bars.values(), default=1) == 1, "a bar stored twice under FINAL"

    state = instance_dir(settings)
    execution = settings.execution
    engine = Engine(
        RiskLimits.from_settings(execution, registry(settings.symbols), settings.market),
        SizingPolicy.from_settings(execution),
        SystemClock(),
    )
    with Journal(state / JOURNAL_NAME, fsync=False) as journal:
        events = list(journal.events())
    replay(engine, events)
    journal_orders = Counter(event.signal_id for event in events if isinstance(event, OrderSubmitted))
    with Journal(state / LEDGER_NAME, fsync=False) as ledger:
        broker_events = list(ledger.events())
    broker_orders = Counter(event.signal_id for event in broker_events if isinstance(event, OrderSubmitted))
    assert signal_ids and journal_orders and broker_orders, (
        f"{len(signal_ids)} signals, {len(journal_orders)} orders journaled, {len(broker_orders)} at the broker: "
        "with no order the one-order-per-signal checks below would hold vacuously"
    )
    assert max(journal_orders.values(), default=1) == 1, "the journal holds two orders for one signal"
    assert max(broker_orders.values(), default=1) == 1, "a signal reached the broker twice"
    undecided = signal_ids - engine.decided_signals
    assert not undecided, f"{len(undecided)} stored signals were never decided"
    broker_filled = {
        event.client_order_id: event.cumulative_lots for event in broker_events if isinstance(event, OrderFilled)
    }
    in_journal = {cid: (str(o.status), o.filled_lots) for cid, o in engine.orders.items()}
    in_warehouse = {cid: (status, lots) for cid, status, lots in order_rows}
    differing = sorted(
        cid for cid in in_journal.keys() | in_warehouse.keys() if in_journal.get(cid) != in_warehouse.get(cid)
    )
    assert not differing, (
        f"journal and warehouse disagree on {len(differing)} of {len(in_journal)} orders, e.g. "
        + "; ".join(f"{cid}: journal {in_journal.get(cid)}, warehouse {in_warehouse.get(cid)}" for cid in differing[:5])
    )
    assert sorted(fill_rows) == sorted((fid, cid) for cid, o in engine.orders.items() for fid in o.fill_ids), (
        "journal and warehouse disagree on fills"
    )
    for cid, lots in broker_filled.items():
        assert engine.orders[cid].filled_lots == lots, f"journal and broker disagree on {cid}"
    return {
        "acknowledged ticks": len(acknowledged),
        "ticks stored": len(stored),
        "ticks lost": len(lost),
        "ticks doubled": len(rows) - len(stored),
        "quarantined": quarantined,
        "closed bars checked": len(closed),
        "signals": len(signal_ids),
        "orders": len(engine.orders),
        "fills": len(fill_rows),
        "orders per signal (max)": max(journal_orders.values(), default=0),
        "duplicates": len(rows) - len(stored) + max(0, max(bars.values(), default=1) - 1),
    }


def live_market(
    settings: Settings, symbols: list[str], seconds: float, stop: threading.Event, rate: float = 40.0
) -> int:
    """Stream simulated ticks (``rate`` per second, all symbols) until ``seconds`` passed or ``stop``.

    The source is restarted if a broker outage ends it.
    """
    from streams.ingest.sources import SourceKind, build_source, run_source

    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        remaining = max(1, int(deadline - time.monotonic()))
        source = build_source(
            settings,
            SourceKind.SIM,
            stop,
            symbols=",".join(symbols),
            rate=rate,
            duration=f"{remaining}s",
            seed=int(time.monotonic()),
        )
        try:
            sent += run_source(settings, source, stop).ticks
        except Exception as exc:  # the broker was down: what it acknowledged counts, the rest was never acknowledged
            console.print(f"  live market interrupted ({exc.__class__.__name__}); resuming")
            time.sleep(1)
    return sent


def serve_a_model(settings: Settings, settle_s: float, replay_speed: str = "max") -> list[str]:
    """Replay the sample, wait until it is stored, train and promote the demo's model on it; return its symbols.

    ``replay_speed``: a factor of real time (the sample is 10 minutes long), or ``max``.
    """
    from app.demo import train_on_sample
    from streams.ingest.sample import sample_paths
    from streams.ingest.sources import replay_sample

    started = time.monotonic()
    replayed = replay_sample(settings, replay_speed)
    console.print(f"replayed {replayed.ticks:,} sample ticks in {time.monotonic() - started:.1f} s")
    symbols = sorted({path.name.split("_")[0] for path in sample_paths()})
    sample_start_ms = 1_709_539_200_000
    wait_quiet(settings, settle_s)
    console.print(train_on_sample(settings, symbols, (sample_start_ms, sample_start_ms + 11 * 60_000)))
    return symbols


def run_chaos(state_dir: Path, plan: ChaosPlan) -> ChaosResult:
    """Bring the platform up, replay, train, shake during a live market, settle, check; always bring it down."""
    from app.cli.services import bring_down, bring_up

    settings = chaos_settings(state_dir)
    result = ChaosResult()
    try:
        bring_up(settings)  # inside: a refused start still brings down what started before it
        symbols = serve_a_model(settings, plan.settle_s)
        stop = threading.Event()
        shaker = threading.Thread(target=shake, args=(settings, plan, stop, result), name="chaos")
        shaker.start()
        try:
            live = live_market(settings, symbols, plan.live_s, stop)
        finally:
            shaker.join()
        if result.failure is not None:
            raise result.failure
        console.print(f"live market: {live:,} ticks sent")
        wait_quiet(settings, plan.settle_s)
        result.checks = check_everything(settings)
    finally:
        bring_down(settings)
    return result


def report(result: ChaosResult, plan: ChaosPlan) -> Table:
    """The table ``make chaos`` prints: kills and recovery per service, then what was lost and doubled."""
    table = Table("service", "kills", "recovery p50", "recovery max", title="chaos: kill -9 during replay + live")
    for target, times in result.recoveries.items():
        table.add_row(target, str(len(times)), f"{statistics.median(times):.1f} s", f"{max(times):.1f} s")
    table.add_row("warehouse (frozen)", f"{plan.warehouse_freeze_s:.0f} s SIGSTOP", "", "")
    for name, value in result.checks.items():
        table.add_row(name, str(value), "", "")
    return table


def main() -> None:
    """`make chaos`: the long run; prints the table and writes it as JSON beside the state dir."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--kills", type=int, default=3, help="kills per service")
    parser.add_argument("--live-s", type=float, default=240.0)
    parser.add_argument("--freeze-s", type=float, default=30.0)
    parser.add_argument("--state-dir", type=Path, default=Path(".tickwave-chaos"))
    arguments = parser.parse_args()
    plan = ChaosPlan(arguments.kills, arguments.freeze_s, arguments.live_s)
    result = run_chaos(arguments.state_dir.resolve(), plan)
    console.print(report(result, plan))
    load = os.getloadavg()
    (arguments.state_dir / "chaos.json").write_text(
        json.dumps(
            {"plan": plan.__dict__, "recoveries": result.recoveries, "checks": result.checks, "load": load}, indent=2
        )
    )


if __name__ == "__main__":
    main()
