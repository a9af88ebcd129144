"""Where an authenticated broker's latency goes: one Kafka hop on PLAINTEXT, SASL_PLAINTEXT and SASL_SSL.

One producer and one consumer of this process (the ``latency`` profiles, as the hot path's), one
topic, ``--rate`` messages/s of ``--size`` bytes for ``--seconds`` after a warm-up: produce ->
consume latency (p50/p99), and the CPU the broker's JVM and this process (librdkafka's threads
included) spent per thousand messages, read from ``/proc``. Each broker is measured with the
clients' defaults and with the client variants in ``VARIANTS`` (librdkafka settings that differ
under TLS), so a difference can be put on TLS, on SASL, or on a setting. ``--rounds`` repeats the
three brokers in turn, alternating their order. Run: python -m bench.bus_hop
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic
from rich.console import Console
from rich.table import Table

from adapters.bus import make_admin, make_consumer, make_producer, resolve_admin, resolve_bootstrap
from adapters.endpoints import live_endpoint
from bench.embedded import embedded_bus
from tickwave.config import Settings

console = Console()
PROTOCOLS = ("SASL_SSL", "SASL_PLAINTEXT", "PLAINTEXT")
VARIANTS: dict[str, dict[str, Any]] = {"defaults": {}, "nagle off": {"socket.nagle.disable": True}}
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def hop(bus: Settings, topic: str, args: argparse.Namespace, client: dict[str, Any]) -> dict[str, float]:
    """Time ``--rate`` messages/s through one topic; return the latency percentiles and CPU per 1k messages."""
    bootstrap = resolve_bootstrap(bus)
    producer = make_producer(bootstrap, "latency", **client)
    consumer = make_consumer(bootstrap, f"hop-{topic}", "latency", **client)
    consumer.subscribe([topic])
    broker = live_endpoint(bus.state_path, "kafka")
    assert broker is not None
    payload = b"x" * args.size
    latencies: list[float] = []
    try:
        for seconds, keep in ((args.warmup, False), (args.seconds, True)):
            broker_cpu, own_cpu = _cpu_s(broker.pid), _cpu_s(os.getpid())
            sent, received, start = 0, 0, time.perf_counter()
            total = int(seconds * args.rate)
            while received < total:
                due = min(total, int((time.perf_counter() - start) * args.rate) + 1)
                while sent < due:
                    producer.produce(topic, payload, headers={"t": str(time.perf_counter_ns())})
                    sent += 1
                producer.poll(0)
                message = consumer.poll(0.0005)
                if message is None or message.error():
                    continue
                received += 1
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
        "broker_cpu": 1000 * broker_cpu / total,
        "client_cpu": 1000 * own_cpu / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed messages per broker and variant")
    parser.add_argument("--warmup", type=float, default=5.0, help="untimed messages first (the JIT)")
    parser.add_argument("--rate", type=int, default=1000, help="messages per second")
    parser.add_argument("--size", type=int, default=200, help="payload bytes (a signal's order of size)")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the three brokers, alternating order")
    args = parser.parse_args()
    rows: list[tuple[str, str, int, dict[str, float]]] = []
    for round_index in range(args.rounds):
        order = PROTOCOLS if round_index % 2 == 0 else PROTOCOLS[::-1]
        for protocol in order:
            with embedded_bus(protocol) as bus:
                admin = make_admin(resolve_admin(bus))
                for name, client in VARIANTS.items():
                    topic = f"hop-{round_index}-{name.replace(' ', '-')}"
                    admin.create_topics([NewTopic(topic, 1, 1)])
                    time.sleep(1.0)
                    rows.append((protocol, name, round_index, hop(bus, topic, args, client)))
    table = Table(
        "broker",
        "client",
        "round",
        "p50 ms",
        "p99 ms",
        "broker CPU s/1k",
        "client CPU s/1k",
        title=__doc__.splitlines()[0],
    )
    for protocol, name, round_index, figures in sorted(rows, key=lambda row: (row[0], row[1], row[2])):
        table.add_row(
            protocol,
            name,
            str(round_index),
            f"{figures['p50']:.2f}",
            f"{figures['p99']:.2f}",
            f"{figures['broker_cpu']:.3f}",
            f"{figures['client_cpu']:.3f}",
        )
    console.print(table)
    console.print(
        f"{args.rate} messages/s of {args.size} B, {args.seconds:.0f} s each; load average after: "
        f"{', '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
