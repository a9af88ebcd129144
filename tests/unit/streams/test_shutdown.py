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
# A flow whose source spends its time in Python (as the Kafka source does), stopped by SIGTERM after 1 s.
FLOW = textwrap.dedent(
    """
    import os, signal, sys, threading
    from datetime import timedelta

    import bytewax.operators as op
    from bytewax._bytewax import cli_main
    from bytewax.dataflow import Dataflow
    from bytewax.errors import BytewaxRuntimeError
    from bytewax.inputs import FixedPartitionedSource, StatefulSourcePartition

    from streams.shutdown import ShutdownPanicFilter, install_stop_handler, is_requested_stop

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
        if sys.argv[1] == "handled":
            install_stop_handler(stopping, main.__code__)
        else:
            signal.signal(signal.SIGTERM, signal.default_int_handler)
        threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGTERM)).start()
        with ShutdownPanicFilter(stopping):
            try:
                cli_main(flow, workers_per_process=1, epoch_interval=timedelta(seconds=1))
            except (KeyboardInterrupt, BytewaxRuntimeError) as exc:
                if not is_requested_stop(exc, stopping):
                    raise
                print("busy stopped", file=sys.stderr)

    main()
    """
)


def run_flow(tmp_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "flow.py"
    script.write_text(FLOW)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("RUST_BACKTRACE", None)
    # The stop lands when a 10 ms retry finds the run loop between activations: about a second
    # idle, 4-13 s beside two busy cores, and once over 60 s in a full test run.
    return subprocess.run(
        [sys.executable, str(script), mode], env=env, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.mark.parametrize("attempt", range(3))
def test_stop_when_sigterm_arrives_during_a_step_then_one_stopped_line_and_exit_0(tmp_path: Path, attempt: int) -> None:
    done = run_flow(tmp_path, "handled")

    assert done.returncode == 0, done.stderr
    assert done.stderr == "busy stopped\n"


def test_stop_when_the_interrupt_is_raised_anywhere_then_the_step_fails_with_a_panic(tmp_path: Path) -> None:
    # What the handler exists for: Python's default handler interrupts the source's own code.
    done = run_flow(tmp_path, "default")

    assert done.returncode != 0
    assert "panicked" in done.stderr and "Traceback" in done.stderr


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
        install_stop_handler(stopping, test_handler_when_sigalrm_arrives_without_a_stop_then_nothing_happens.__code__)
        os.kill(os.getpid(), signal.SIGALRM)

        assert not stopping.is_set()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
