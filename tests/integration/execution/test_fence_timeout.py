"""The fence after the broker aborted its transaction for its age: taken again if no one else confirmed.

A transaction open longer than ``TRANSACTION_TIMEOUT_MS`` (a broker down or unreachable while
it was open) is aborted by the coordinator, which fences its producer just as a newer holder
does. The producer here is the real one against the session broker; only its commit is held
back, as an outage holds it, for longer than the coordinator lets a transaction live.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from adapters.bus import resolve_bootstrap
from execution import fence as fence_module
from execution.fence import AccountFence, Fenced
from tickwave.config import Settings

# The coordinator aborts a transaction past its timeout at its next scan (every 10 s by default).
ABORTED_BY_S = fence_module.TRANSACTION_TIMEOUT_MS / 1000 + 12


class HeldCommit:
    """The fence's producer, whose first commit reaches no broker for ``held_s`` (then times out, retriable)."""

    def __init__(self, producer: Any, held_s: float, meanwhile: Callable[[], None] = lambda: None) -> None:
        self.producer = producer
        self.held_s = held_s
        self.meanwhile = meanwhile

    def commit_transaction(self, *arguments: Any) -> None:
        held, self.held_s = self.held_s, 0.0
        if not held:
            self.producer.commit_transaction(*arguments)
            return
        started = time.monotonic()
        self.meanwhile()
        time.sleep(max(0.0, held - (time.monotonic() - started)))
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "held back", retriable=True))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.producer, name)


def _fence(settings: Settings) -> AccountFence:
    fence = AccountFence(settings, resolve_bootstrap(settings))
    fence.claim()
    fence.confirm()
    return fence


def test_fence_when_its_transaction_is_aborted_for_its_age_and_no_one_else_confirmed_then_it_is_taken_again(
    topics: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    fence = _fence(topics)
    fence.stage({(fence._beat_at.topic, 0): 3})
    fence._producer = HeldCommit(fence._producer, ABORTED_BY_S)

    fence.confirm()  # the held commit is fenced by the coordinator's abort, then the fence is taken again

    assert "the fence is taken again" in caplog.text
    fence.confirm()  # and confirms on, with its new producer
    assert fence._read_committed()[(topics.execution.consumer_group, fence._beat_at.topic, 0)] == (3, fence._token)


def test_fence_when_another_process_took_the_account_while_its_transaction_was_held_then_it_is_fenced(
    topics: Settings,
) -> None:
    fence = _fence(topics)
    newer: list[AccountFence] = []

    def take_over() -> None:
        time.sleep(fence_module.TRANSACTION_TIMEOUT_MS / 1000)
        newer.append(_fence(topics))  # claims the account (aborting the held transaction) and confirms once

    fence._producer = HeldCommit(fence._producer, fence_module.TRANSACTION_TIMEOUT_MS / 1000 + 1, take_over)

    with pytest.raises(Fenced):
        fence.confirm()
    newer[0].confirm()  # the newer holder was not fenced back
