"""The fence waits for a broker that does not answer, and resumes the open transaction rather than beginning another.

The fence against the real broker (fenced, restarted) is in ``tests/integration``; here its
transactional producer is replaced by a script of answers, so the waiting is seen call by call.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from execution import fence as fence_module
from execution.fence import AccountFence, Fenced
from tickwave.config import load_settings
from tickwave.errors import ServiceError


class ScriptedProducer:
    """Fails ``send_offsets_to_transaction`` with ``errors`` in turn, then succeeds; notes every call."""

    def __init__(self, errors: list[KafkaError]) -> None:
        self.errors = list(errors)
        self.calls: list[str] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, *_arguments: Any) -> None:
        self.calls.append("send")
        if self.errors:
            raise KafkaException(self.errors.pop(0))

    def commit_transaction(self, *_arguments: Any) -> None:
        self.calls.append("commit")

    def abort_transaction(self, *_arguments: Any) -> None:
        self.calls.append("abort")


def _timed_out() -> KafkaError:
    return KafkaError(KafkaError._TIMED_OUT, "coordinator not available", retriable=True)


def _fence(tmp_path: Path, errors: list[KafkaError], stopping: threading.Event | None = None) -> AccountFence:
    settings = load_settings(state_dir=tmp_path, kafka={"bootstrap": "127.0.0.1:9", "security_protocol": "PLAINTEXT"})
    fence = AccountFence(settings, "127.0.0.1:9", *([stopping] if stopping else []))
    fence._producer = ScriptedProducer(errors)  # type: ignore[assignment]
    return fence


def test_fence_when_broker_silent_past_the_retry_window_then_confirm_waits_and_resumes_its_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fence_module, "RETRY_FOR_S", 0.05)  # the old give-up window, shorter than the outage
    fence = _fence(tmp_path, [_timed_out()] * 4)

    fence.confirm()

    producer = fence._producer
    assert isinstance(producer, ScriptedProducer)
    assert producer.calls == ["begin", "send", "send", "send", "send", "send", "commit"], "one transaction, resumed"
    assert fence.waiting_s() is None, "no longer waiting once the broker took it"


def test_fence_when_transaction_must_abort_then_aborted_and_begun_again(tmp_path: Path) -> None:
    abortable = KafkaError(KafkaError._STATE, "abortable", txn_requires_abort=True)
    fence = _fence(tmp_path, [abortable])

    fence.confirm()

    producer = fence._producer
    assert isinstance(producer, ScriptedProducer)
    assert producer.calls == ["begin", "send", "abort", "begin", "send", "commit"]


@pytest.mark.parametrize(
    ("error", "raised"),
    [
        (KafkaError(KafkaError._FENCED, "fenced", fatal=True), Fenced),
        (KafkaError(KafkaError._FATAL, "fatal", fatal=True), ServiceError),
        (KafkaError(KafkaError._INVALID_ARG, "neither retriable nor abortable"), ServiceError),
    ],
)
def test_fence_when_error_is_final_then_raised_without_waiting(
    tmp_path: Path, error: KafkaError, raised: type[Exception]
) -> None:
    fence = _fence(tmp_path, [error, _timed_out()])

    with pytest.raises(raised):
        fence.confirm()


def test_fence_when_stopping_while_waiting_then_confirm_gives_up_and_sends_nothing_more(tmp_path: Path) -> None:
    stopping = threading.Event()
    fence = _fence(tmp_path, [_timed_out()] * 1000, stopping)
    threading.Timer(0.3, stopping.set).start()

    with pytest.raises(ServiceError, match="stopping while the broker does not answer"):
        fence.confirm()

    producer = fence._producer
    assert isinstance(producer, ScriptedProducer)
    assert "commit" not in producer.calls


_GUARDED = """
import sys, time
from execution.fence import exit_if_hung
answers = {"down": lambda: False, "up": lambda: True}[sys.argv[1]]
with exit_if_hung(0.3, "a call", answers):
    time.sleep(1.2)
print("returned")
"""


@pytest.mark.parametrize(("broker", "code"), [("down", 0), ("up", fence_module.HUNG_EXIT_CODE)])
def test_hang_guard_when_a_call_outlasts_its_deadline_then_it_exits_only_if_the_broker_answers(
    broker: str, code: int
) -> None:
    # librdkafka's send_offsets_to_transaction can block past its timeout while the broker is down:
    # that is waiting for the broker, not a hang, so the process stays where its clients find it.
    done = subprocess.run([sys.executable, "-c", _GUARDED, broker], capture_output=True, text=True, timeout=30)
    assert done.returncode == code, done.stderr
    assert ("returned" in done.stdout) == (broker == "down")
