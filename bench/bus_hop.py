"""Where an authenticated broker's latency goes: one Kafka hop on PLAINTEXT, SASL_PLAINTEXT and SASL_SSL.

One producer and one consumer of this process (the ``latency`` profiles, as the hot path's), one
topic, ``--rate`` messages/s of ``--size`` bytes for ``--seconds`` after a warm-up: produce ->
consume latency (p50/p99); librdkafka's own split of it, from its statistics each second (the
median of the seconds' p50, in ms): the producer's queue (``int_latency``), its output buffer
(``outbuf_latency``) and its produce round trip to the broker (``rtt``), and the consumer's
fetch round trip; and the CPU the broker's JVM and this process (librdkafka's threads included)
spent per thousand messages. So a difference can be put on TLS, on SASL, on
the client or on the broker. ``--rounds`` repeats the three brokers in turn, alternating their
order. Run: python -m bench.bus_hop
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

import psutil
from confluent_kafka.admin import NewTopic
from rich.console import Console
from rich.table import Table

from adapters.bus import make_admin, make_consumer, make_producer, resolve_admin, resolve_bootstrap
from adapters.endpoints import live_endpoint
from bench.embedded import PROTOCOLS, embedded_bus
from tickwave.config import Settings

console = Console(width=180)
STALL_S = 30.0
# librdkafka's per-broker windows (microseconds) for the split of one hop: (whose client, window).
SPLIT = {
    "queue": ("producer", "int_latency"),
    "outbuf": ("producer", "outbuf_latency"),
    "produce rtt": ("producer", "rtt"),
    "fetch rtt": ("consumer", "rtt"),
}


def _cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def hop(bus: Settings, topic: str, args: argparse.Namespace) -> dict[str, float]:
    """Time ``--rate`` messages/s through one topic; return the latency percentiles and CPU per 1k messages."""
    bootstrap = resolve_bootstrap(bus)
    seconds_stats: dict[str, list[float]] = {name: [] for name in SPLIT}
    keeping = [False]

    def statistics_of(role: str) -> Any:
        def collect(text: str) -> None:
            if not keeping[0]:
                return
            for broker_stats in json.loads(text)["brokers"].values():
                if broker_stats["nodeid"] < 0:
                    continue  # the bootstrap placeholder
                for name, (owner, window) in SPLIT.items():
                    if owner == role and broker_stats[window]["cnt"]:
                        seconds_stats[name].append(broker_stats[window]["p50"] / 1000)

        return collect

    every_second = {"statistics.interval.ms": 1000}
    producer = make_producer(bootstrap, "latency", stats_cb=statistics_of("producer"), **every_second)
    consumer = make_consumer(bootstrap, f"hop-{topic}", "latency", stats_cb=statistics_of("consumer"), **every_second)
    consumer.subscribe([topic])
    broker = live_endpoint(bus.state_path, "kafka")
    assert broker is not None
    payload = b"x" * args.size
    latencies: list[float] = []
    try:
        for seconds, keep in ((args.warmup, False), (args.seconds, True)):
            keeping[0] = keep
            broker_cpu, own_cpu = _cpu_s(broker.pid), _cpu_s(os.getpid())
            sent, received, start = 0, 0, time.perf_counter()
            total = int(seconds * args.rate)
            last_progress = start
            while received < total:
                if time.perf_counter() - last_progress > STALL_S:
                    raise RuntimeError(f"no message consumed for {STALL_S:.0f} s ({received} of {total})")
                due = min(total, int((time.perf_counter() - start) * args.rate) + 1)
                while sent < due:
                    producer.produce(topic, payload, headers={"t": str(time.perf_counter_ns())})
                    sent += 1
                producer.poll(0)
                message = consumer.poll(0.0005)
                if message is None or message.error():
                    continue
                received += 1
                last_progress = time.perf_counter()
                if keep:
                    sent_ns = int(dict(message.headers() or [])["t"])
                    latencies.append((time.perf_counter_ns() - sent_ns) / 1e6)
            broker_cpu, own_cpu = _cpu_s(broker.pid) - broker_cpu, _cpu_s(os.getpid()) - own_cpu
    finally:
        producer.flush(5)
        consumer.close()
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
        **{name: statistics.median(values) if values else float("nan") for name, values in seconds_stats.items()},
        "broker_cpu": 1000 * broker_cpu / total,
        "client_cpu": 1000 * own_cpu / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed messages per broker")
    parser.add_argument("--warmup", type=float, default=5.0, help="untimed messages first (the JIT)")
    parser.add_argument("--rate", type=int, default=2000, help="messages per second")
    parser.add_argument("--size", type=int, default=200, help="payload bytes (a signal's order of size)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the three brokers, alternating order")
    args = parser.parse_args()
    load_before = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    rows: list[tuple[str, int, dict[str, float]]] = []
    for round_index in range(args.rounds):
        for protocol in PROTOCOLS if round_index % 2 == 0 else PROTOCOLS[::-1]:
            with embedded_bus(protocol) as bus:
                topic = f"hop-{round_index}"
                admin = make_admin(resolve_admin(bus))  # kept until the broker has answered
                for created in admin.create_topics([NewTopic(topic, 1, 1)]).values():
                    created.result(timeout=30)
                rows.append((protocol, round_index, hop(bus, topic, args)))
    table = Table(
        "broker",
        "round",
        "p50 ms",
        "p99 ms",
        *(f"{part} p50 ms" for part in SPLIT),
        "broker CPU s/1k",
        "client CPU s/1k",
        title=__doc__.splitlines()[0],
    )
    for protocol, round_index, figures in sorted(rows, key=lambda row: (PROTOCOLS.index(row[0]), row[1])):
        table.add_row(
            protocol,
            str(round_index),
            f"{figures['p50']:.2f}",
            f"{figures['p99']:.2f}",
            *(f"{figures[part]:.2f}" for part in SPLIT),
            f"{figures['broker_cpu']:.3f}",
            f"{figures['client_cpu']:.3f}",
        )
    console.print(table)
    console.print(
        f"{args.rate} messages/s of {args.size} B, {args.seconds:.0f} s per broker and round; load average before: "
        f"{load_before}, after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
