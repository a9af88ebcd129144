"""Cluster chaos: kill -9 the leader of ``ticks`` in a three-broker Kafka during a replay and a live market.

``make cluster-chaos`` runs ``python -m tests.chaos.cluster`` (minutes; not part of ``make test``):

1. Tick-to-signal latency on one broker, then on three, with the same load (the production
   flow of ``bench.streams_latency``: ticks produced with ``acks=all`` at a steady rate, the
   dataflow with a model, signals and records published with ``acks=all``).
2. The platform up with ``kafka.brokers = 3`` and the supervisor (the harness of ``make chaos``:
   a state dir of its own, the demo's execution settings). While the sample is replayed (at 40
   times real time: 15 s), the node leading partition 0 of ``ticks`` is killed with SIGKILL as
   soon as the replay's first ticks are on the topic; the supervisor restarts it. Then a model is trained and promoted,
   and a live simulated market streams while the leader of ``ticks`` is killed again.
   After each kill: the seconds until another node leads the partition, until the killed node
   runs and answers again, until it is back in the in-sync replicas of every partition (it
   caught up), and until it leads the partition again (the preferred leader, put back by the
   controller's leader rebalance).
3. Once everything settled, the checks of ``make chaos``: every acknowledged tick stored once
   (or quarantined with a reason), every closed bar, one order per signal, journal = broker =
   warehouse.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from rich.table import Table

from adapters.bus import make_admin, make_consumer, resolve_admin
from adapters.bus_credentials import ADMIN
from app.services.registry import kafka_nodes
from app.services.supervisor import Supervisor
from tests.chaos.harness import (
    ChaosPlan,
    chaos_settings,
    check_everything,
    console,
    live_market,
    serve_a_model,
    wait_quiet,
)
from tickwave.config import Settings, load_settings
from tickwave.topics import TICKS, topic_name, topic_specs

BROKER_HEAP_MB = 384  # per node: three JVMs beside the platform on a 2-core machine
REPLAY_SPEED = "40"  # the 10-minute sample in 15 s: the first kill lands while the replay writes


@dataclass
class Failover:
    """What one kill of the partition leader cost, in seconds from the SIGKILL."""

    when: str
    node: str
    leader_moved_s: float | None = None  # another node leads the partition
    node_back_s: float | None = None  # the killed node runs again under a new pid and answers
    caught_up_s: float | None = None  # it is back in the in-sync replicas of every partition
    leadership_back_s: float | None = None  # it leads the partition again (its preferred leader)


@dataclass
class ClusterResult:
    """The figures of a run: latency on 1 and 3 brokers, the failovers, the checks."""

    latency: list[dict[str, float]] = field(default_factory=list)  # brokers, p50_ms, p99_ms, load: one per run
    failovers: list[Failover] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)
    live_latency_ms: dict[str, float] = field(default_factory=dict)


def measure_latency(brokers: int, rate: int, seconds: float, warmup_s: float) -> dict[str, float]:
    """Tick-to-signal p50/p99 of the production flow on an embedded Kafka of ``brokers`` nodes, and the load."""
    from bench.streams_latency import tick_to_signal_latency

    state = Path(tempfile.mkdtemp(prefix=f"tw-cluster-latency-{brokers}-"))
    settings = load_settings(
        state_dir=state,
        kafka={
            "brokers": brokers,
            "port": 0,
            "controller_port": 0,
            "heap_mb": BROKER_HEAP_MB,
            "username": ADMIN,  # the authenticated default, reached as its super user
        },
    )
    supervisor, nodes = Supervisor(settings), kafka_nodes(settings)
    supervisor.start_together(nodes)
    figures: dict[str, float] = {}
    try:
        console.print(
            f"{brokers} broker(s): "
            + tick_to_signal_latency(settings, rate, seconds, "production", warmup_s, figures=figures)
        )
    finally:
        supervisor.stop_together(nodes)
    return {"brokers": brokers, **figures, "load": os.getloadavg()[0]}


def partitions(
    admin: AdminClient, names: list[str] | None = None
) -> dict[tuple[str, int], tuple[int, list[int], list[int]]]:
    """(topic, partition) -> (leader, replicas, in-sync replicas), as the cluster reports them now.

    Of the topics ``names`` (a missing one raises KeyError), or of every topic, internal ones included.
    """
    topics = admin.list_topics(timeout=3).topics
    return {
        (name, number): (found.leader, list(found.replicas), list(found.isrs))
        for name in (topics if names is None else names)
        for number, found in topics[name].partitions.items()
    }


def _leader(admin: AdminClient, topic: str) -> int | None:
    try:
        return partitions(admin)[(topic, 0)][0]
    except (KafkaException, KeyError):  # a metadata request to the dead node timed out: ask again
        return None


def _is_caught_up(admin: AdminClient, node: int, topics: set[str]) -> bool:
    try:
        found = partitions(admin)
    except KafkaException:
        return False
    return all(node in isr for (name, _number), (_leader, _replicas, isr) in found.items() if name in topics)


def kill_leader(settings: Settings, topic: str, when: str, timeout_s: float = 180.0) -> Failover:
    """SIGKILL the node leading partition 0 of ``topic``; time the failover, its restart, catch-up and return."""
    supervisor = Supervisor(settings)
    admin = make_admin(resolve_admin(settings))
    leader = _leader(admin, topic)
    assert leader is not None and leader > 0, f"partition 0 of {topic} has no leader"
    node = kafka_nodes(settings)[leader - 1]
    endpoint = supervisor.endpoint(node.name)
    assert endpoint is not None, f"{node.name} leads {topic} but has no record"
    topics = {spec.name(settings.kafka.topic_prefix) for spec in topic_specs(settings)}
    topics |= {"__consumer_offsets", "__transaction_state"}
    failover = Failover(when, node.name)
    started = time.monotonic()
    os.kill(endpoint.pid, signal.SIGKILL)
    console.print(f"  kill -9 {node.name} (node {leader}, leader of {topic}-0, pid {endpoint.pid}) {when}")
    deadline = started + timeout_s
    while time.monotonic() < deadline and failover.leadership_back_s is None:
        elapsed = time.monotonic() - started
        current = _leader(admin, topic)
        if failover.leader_moved_s is None and current not in (None, -1, leader):
            failover.leader_moved_s = elapsed
        if failover.node_back_s is None:
            back = supervisor.endpoint(node.name)
            if back is not None and back.pid != endpoint.pid and node.probe(back.address):
                failover.node_back_s = elapsed
        elif failover.caught_up_s is None and _is_caught_up(admin, leader, topics):
            failover.caught_up_s = elapsed
        elif failover.caught_up_s is not None and failover.leader_moved_s is not None and current == leader:
            failover.leadership_back_s = elapsed
        time.sleep(0.2)
    console.print(f"  {failover}")
    assert failover.leader_moved_s is not None, f"leadership of {topic}-0 never left the killed {node.name}"
    assert failover.caught_up_s is not None, f"{node.name} did not rejoin every ISR within {timeout_s:.0f} s"
    assert failover.leadership_back_s is not None, f"{node.name} did not lead {topic}-0 again within {timeout_s:.0f} s"
    return failover


def kill_when_written(settings: Settings, topic: str, result: ClusterResult, errors: list[BaseException]) -> None:
    """Wait until ``topic`` holds its first messages (the replay started writing), then kill its leader."""
    try:
        consumer = make_consumer(resolve_admin(settings), f"cluster-chaos-{time.time_ns()}")
        try:
            while consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)[1] <= 0:
                time.sleep(0.02)
        finally:
            consumer.close()
        result.failovers.append(kill_leader(settings, topic, "during the replay"))
    except BaseException as exc:  # reported on the main thread
        errors.append(exc)


def run_cluster_chaos(state_dir: Path, plan: ChaosPlan) -> ClusterResult:
    """Bring the platform up on three brokers, kill the ticks leader during the replay and the live market, check."""
    from app.cli.services import bring_down, bring_up
    from bench.soak_probes import SignalLatency

    settings = chaos_settings(state_dir, brokers=3, broker_heap_mb=BROKER_HEAP_MB)
    topic = topic_name(settings, TICKS)
    result = ClusterResult()
    try:
        bring_up(settings)  # inside: a refused start still brings down what started before it
        errors: list[BaseException] = []
        killer = threading.Thread(target=kill_when_written, args=(settings, topic, result, errors), name="replay-kill")
        killer.start()
        symbols = serve_a_model(settings, plan.settle_s, replay_speed=REPLAY_SPEED)
        killer.join()
        if errors:
            raise errors[0]
        stop = threading.Event()
        latency = SignalLatency(settings, stop)
        latency.start()
        live = threading.Thread(target=live_market, args=(settings, symbols, plan.live_s, stop), name="live")
        live.start()
        try:
            time.sleep(plan.live_s / 4)
            result.failovers.append(kill_leader(settings, topic, "during the live market"))
        finally:
            live.join()
            stop.set()
        values = latency.take(settle_ms=0)
        if values:
            import numpy as np

            result.live_latency_ms = {
                "signals": len(values),
                "p50": float(np.percentile(values, 50)),
                "p99": float(np.percentile(values, 99)),
                "max": max(values),
            }
        wait_quiet(settings, plan.settle_s)
        result.checks = check_everything(settings)
    finally:
        bring_down(settings)
    return result


def report(result: ClusterResult) -> Table:
    """The table ``make cluster-chaos`` prints."""
    table = Table("what", "figure", title="cluster chaos: kill -9 of the ticks leader, three brokers")
    for figures in result.latency:
        table.add_row(
            f"tick-to-signal, {figures['brokers']:.0f} broker(s)",
            f"p50 {figures['p50_ms']:.1f} / p99 {figures['p99_ms']:.1f} ms (load {figures['load']:.1f})",
        )
    for failover in result.failovers:
        table.add_row(
            f"kill -9 {failover.node} {failover.when}",
            f"leader moved {failover.leader_moved_s:.1f} s, node back {failover.node_back_s:.1f} s, caught up "
            f"{failover.caught_up_s:.1f} s, leading again {failover.leadership_back_s:.1f} s",
        )
    if result.live_latency_ms:
        live = result.live_latency_ms
        table.add_row(
            "tick-to-signal during the live market (3 brokers, one killed)",
            f"p50 {live['p50']:.0f} / p99 {live['p99']:.0f} / max {live['max']:.0f} ms ({live['signals']:.0f} signals)",
        )
    for name, value in result.checks.items():
        table.add_row(name, str(value))
    return table


def main() -> None:
    """`make cluster-chaos`: latency on 1 and 3 brokers, then the kills; prints the table and writes it as JSON."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--live-s", type=float, default=120.0, help="length of the live market")
    parser.add_argument("--rate", type=int, default=2000, help="ticks/s of the latency runs")
    parser.add_argument("--latency-s", type=float, default=40.0, help="measured seconds of each latency run")
    parser.add_argument("--rounds", type=int, default=1, help="latency runs on 1 then 3 brokers, this many times")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--state-dir", type=Path, default=Path(".tickwave-cluster-chaos"))
    arguments = parser.parse_args()
    result = ClusterResult()
    for _ in range(0 if arguments.skip_latency else arguments.rounds):
        for brokers in (1, 3):
            result.latency.append(measure_latency(brokers, arguments.rate, arguments.latency_s, warmup_s=10.0))
    plan = ChaosPlan(kills_per_service=1, warehouse_freeze_s=0.0, live_s=arguments.live_s)
    chaos = run_cluster_chaos(arguments.state_dir.resolve(), plan)
    result.failovers, result.checks, result.live_latency_ms = chaos.failovers, chaos.checks, chaos.live_latency_ms
    (arguments.state_dir / "cluster-chaos.json").write_text(
        json.dumps(
            {
                "latency": result.latency,
                "failovers": [failover.__dict__ for failover in result.failovers],
                "live_latency_ms": result.live_latency_ms,
                "checks": result.checks,
                "load": os.getloadavg(),
            },
            indent=2,
        )
    )
    console.print(report(result))


if __name__ == "__main__":
    main()
