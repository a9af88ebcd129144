"""What the authenticated default costs: tick-to-signal and the decision path, SASL_SSL against PLAINTEXT.

In one run, on two embedded brokers started one after the other (the same machine, the same
minutes), each measured the same way:

1. tick -> signal at ``--rate`` ticks/s for ``--seconds``, the production flow with its
   production sinks (``bench.streams_latency``: the dataflow and the streams loader each as
   their own principal on the authenticated broker);
2. the decision path over Kafka, fenced as in production (``bench.execution.over_kafka``):
   a signal produced -> the paper broker's acceptance of its order, at ``--signal-rate``/s.

The target: the authenticated default within 1.1x of PLAINTEXT at p99. Machines of the kind
differ about 2x in speed and their neighbours' load changes by the minute, so ``--rounds``
repeats the pair, alternating which broker goes first. Run: python -m bench.bus_auth
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.embedded import AUTHENTICATED, PLAINTEXT, embedded_bus
from bench.execution import over_kafka
from bench.streams_latency import tick_to_signal_latency
from bench.summary import record

console = Console()
TARGET_RATIO = 1.1


def measure(protocol: str, args: argparse.Namespace, root: Path) -> dict[str, float]:
    """Return the p50/p99 of both paths on a broker speaking ``protocol``."""
    with embedded_bus(protocol) as bus:
        flow: dict[str, float] = {}
        console.print(tick_to_signal_latency(bus, rate=args.rate, seconds=args.seconds, figures=flow))
        folder = root / protocol.lower()
        over_kafka(folder, bus, "confluent", args.warmup, args.signal_rate, label="warmup")  # the broker's JIT
        decided = over_kafka(folder, bus, "confluent", args.seconds, args.signal_rate, label="fenced", is_fenced=True)
    p50, p99, _worst = decided["latency"]
    return {
        "tick_p50_ms": flow["p50_ms"],
        "tick_p99_ms": flow["p99_ms"],
        "decision_p50_ms": p50 / 1000,
        "decision_p99_ms": p99 / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="timed stream per path and broker")
    parser.add_argument("--warmup", type=float, default=10.0, help="untimed signals first on each broker")
    parser.add_argument("--rate", type=int, default=5000, help="ticks per second")
    parser.add_argument("--signal-rate", type=int, default=1000, help="signals per second")
    parser.add_argument("--rounds", type=int, default=1, help="pairs of runs, alternating which broker goes first")
    args = parser.parse_args()
    results: dict[str, list[dict[str, float]]] = {AUTHENTICATED: [], PLAINTEXT: []}
    with tempfile.TemporaryDirectory(prefix="tickwave-bench-bus-auth-") as directory:
        for round_index in range(args.rounds):
            order = (AUTHENTICATED, PLAINTEXT) if round_index % 2 == 0 else (PLAINTEXT, AUTHENTICATED)
            for protocol in order:
                results[protocol].append(measure(protocol, args, Path(directory) / str(round_index)))
    table = Table(
        "path",
        "SASL_SSL p50",
        "SASL_SSL p99",
        "PLAINTEXT p50",
        "PLAINTEXT p99",
        "p99 ratio",
        title=__doc__.splitlines()[0],
    )
    for path, label in (("tick", "tick -> signal (ms)"), ("decision", "signal produced -> order accepted (ms)")):
        worst = {protocol: max(run[f"{path}_p99_ms"] for run in runs) for protocol, runs in results.items()}
        middle = {protocol: max(run[f"{path}_p50_ms"] for run in runs) for protocol, runs in results.items()}
        ratio = worst[AUTHENTICATED] / worst[PLAINTEXT]
        table.add_row(
            label,
            f"{middle[AUTHENTICATED]:.2f}",
            f"{worst[AUTHENTICATED]:.2f}",
            f"{middle[PLAINTEXT]:.2f}",
            f"{worst[PLAINTEXT]:.2f}",
            f"{ratio:.2f}x",
        )
        record(
            f"authenticated default (SASL_SSL) vs PLAINTEXT: {label}, p99",
            worst[AUTHENTICATED],
            "ms",
            baseline=f"PLAINTEXT p99 {worst[PLAINTEXT]:.2f} ms ({ratio:.2f}x)",
            target=f"<= {TARGET_RATIO}x PLAINTEXT",
            is_met=ratio <= TARGET_RATIO,
        )
    console.print(table)
    console.print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load average after: {', '.join(f'{v:.2f}' for v in os.getloadavg())}; "
        f"{args.rounds} round(s): the worst p50 and p99 of each broker's runs"
    )


if __name__ == "__main__":
    main()
