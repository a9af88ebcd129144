"""A stop asked for by SIGTERM ends the Bytewax runtime the clean way, and its log says only that it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from streams.shutdown import is_requested_stop

ROOT = Path(__file__).resolve().parents[3]
# A flow whose source spends its time in Python (as the Kafka source does), stopped by SIGTERM after 1 s;
# it prints how long the stop took, from the signal to the runtime's return.
FLOW = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from datetime import timedelta

    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.errors import BytewaxRuntimeError
    from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

    from streams.shutdown import install_stop_handler, is_requested_stop, run_dataflow

    class Busy(StatefulSourcePartition):
        def next_batch(self):
            return [sum(range(200_000))]

        def snapshot(self):
            return None

    class Source(FixedPartitionedSource):
        def list_parts(self):
            return ["p"]

        def build_part(self, step_id, key, resume):
            return Busy()

    def main():
        flow = Dataflow("busy")
        op.inspect("seen", op.filter("none", op.input("in", flow, Source()), lambda x: False))
        stopping = threading.Event()
        install_stop_handler(stopping)
        sent = []

        def terminate():
            sent.append(time.monotonic())
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Timer(1.0, terminate).start()
        try:
            run_dataflow(flow, timedelta(seconds=1), None)
        except (KeyboardInterrupt, BytewaxRuntimeError) as exc:
            if not is_requested_stop(exc, stopping):
                raise
            print("busy stopped", file=sys.stderr)
        print(f"{time.monotonic() - sent[0]:.3f}")

    main()
    """
)


def test_stop_when_sigterm_arrives_while_a_step_runs_then_at_once_one_stopped_line_and_exit_0(tmp_path: Path) -> None:
    script = tmp_path / "flow.py"
    script.write_text(FLOW)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == "busy stopped\n"
    # The worker on the calling thread took 2-57 s to stop beside two busy cores (0.00-0.02 s on its own thread).
    assert float(done.stdout) < 5.0, done.stdout


def test_is_requested_stop_when_no_stop_was_asked_then_an_interrupt_is_a_failure() -> None:
    stopping = threading.Event()
    wrapped = RuntimeError("signal received")
    wrapped.__cause__ = KeyboardInterrupt()

    assert not is_requested_stop(wrapped, stopping)
    stopping.set()
    assert is_requested_stop(wrapped, stopping)
    assert not is_requested_stop(RuntimeError("a step failed"), stopping)


def test_handler_when_sigalrm_arrives_without_a_stop_then_nothing_happens() -> None:
    from streams.shutdown import install_stop_handler

    stopping = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM)}
    try:
        install_stop_handler(stopping)
        os.kill(os.getpid(), signal.SIGALRM)

        assert not stopping.is_set()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
