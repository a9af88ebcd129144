"""A stop asked for by SIGTERM ends the Bytewax runtime the clean way, and its log says only that it stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from streams.shutdown import ShutdownPanicFilter, is_requested_stop, is_shutdown_panic

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

    from streams.shutdown import ShutdownPanicFilter, install_stop_handler, is_requested_stop, run_dataflow

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
        with ShutdownPanicFilter(stopping):
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
    env.pop("RUST_BACKTRACE", None)

    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120, check=False
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == "busy stopped\n"
    # The worker on the calling thread took 2-57 s to stop beside two busy cores (0.00-0.02 s on its own thread).
    assert float(done.stdout) < 5.0, done.stdout


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"thread '<unnamed>' panicked at src/run.rs:133:25:", True),
        (b"Box<dyn Any>", True),
        (b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace", True),
        (b"thread '<unnamed>' panicked at src/inputs.rs:446:10:", False),
        (b"2026-01-05 INFO streams: epoch 12", False),
    ],
)
def test_is_shutdown_panic_when_a_line_is_read_then_only_the_unwinding_lines_match(line: bytes, expected: bool) -> None:
    assert is_shutdown_panic(line) is expected


def test_is_requested_stop_when_no_stop_was_asked_then_an_interrupt_is_a_failure() -> None:
    stopping = threading.Event()
    wrapped = RuntimeError("signal received")
    wrapped.__cause__ = KeyboardInterrupt()

    assert not is_requested_stop(wrapped, stopping)
    stopping.set()
    assert is_requested_stop(wrapped, stopping)
    assert not is_requested_stop(RuntimeError("a step failed"), stopping)


def test_filter_when_lines_pass_before_and_after_a_stop_then_only_the_panic_after_it_is_dropped(tmp_path: Path) -> None:
    out = tmp_path / "err"
    stopping = threading.Event()
    saved = os.dup(2)
    with out.open("wb") as handle:
        os.dup2(handle.fileno(), 2)
        try:
            with ShutdownPanicFilter(stopping):
                os.write(2, b"Box<dyn Any>\nkept before\n")
                time.sleep(0.3)  # the pump reads a line as it comes: it decides by the stop when it reads
                stopping.set()
                os.write(2, b"Box<dyn Any>\nkept after\n")
        finally:
            os.dup2(saved, 2)
            os.close(saved)

    assert out.read_text() == "Box<dyn Any>\nkept before\nkept after\n"


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
