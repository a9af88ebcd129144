"""The supervisor's restart rule: exponential backoff, and a crash loop stops restarts."""

from __future__ import annotations

from app.services.watchdog import RestartPolicy
from tickwave.config import SupervisionSettings


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
