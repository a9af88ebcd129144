"""The supervisor's restart rule: exponential backoff, and a crash loop stops restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.services.watchdog import EventLog, RestartPolicy
from tickwave.config import SupervisionSettings, load_settings


def test_restart_policy_when_restarts_accumulate_then_backoff_doubles_up_to_the_cap() -> None:
    policy = RestartPolicy(SupervisionSettings(backoff_initial_s=1.0, backoff_max_s=5.0, max_restarts=10))
    delays = []
    for now in range(6):
        delays.append(policy.delay_s())
        policy.restarted(float(now))

    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_restart_policy_when_n_restarts_within_window_then_crash_loop_and_old_ones_forgotten() -> None:
    policy = RestartPolicy(SupervisionSettings(max_restarts=3, window_s=60.0))
    for now in (0.0, 10.0, 20.0):
        assert not policy.is_crash_loop(now)
        policy.restarted(now)

    assert policy.is_crash_loop(30.0)
    assert not policy.is_crash_loop(65.0)  # the first restart left the window
    assert policy.delay_s() == 4.0  # two restarts left in the window: 1 s x 2^2


def test_event_log_when_events_added_within_one_millisecond_then_their_times_keep_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A crash and its crash-loop verdict are written back to back: sorted by time, the verdict comes last.
    monkeypatch.setattr("app.services.watchdog.time.time", lambda: 1_700_000_000.0004)
    log = EventLog(load_settings(state_dir=tmp_path))

    log.add("execution", "crashed", 41, 2, "process gone")
    log.add("execution", "gave_up", 41, 2, "crash loop")

    assert [row["event_at_ms"] for row in log.pending] == [1_700_000_000_000, 1_700_000_000_001]
