"""The engine against its golden records: today's decisions, bookings, journals and chain heads, reproduced exactly.

``testkit/golden.py`` records them into ``tests/fixtures/golden`` (``python -m testkit.golden --write``; a
deliberate act whose diff is reviewed, tests/README.md). Whatever implements the engine's rules must pass these
unchanged: the benchmark's timeline replayed both ways, each scripted session run through the service and its
file journal, and each journal kept from today's code opened, replayed and written again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testkit import golden

GOLDEN = Path(__file__).parents[2] / "fixtures" / "golden"
_NAMES = [scenario.name for scenario in golden.SCENARIOS]

# What the scripted sessions are there to show: each check refuses once, each breaker and command acts once.
_DENIED_BY = {
    "sizing",
    "signal_timeframe",
    "signal_ttl",
    "symbol_allowed",
    "no_price",
    "gross_exposure",
    "price_collar",
    "order_rate",
    "market_open",
    "trading_state",
}
_RISK_KINDS = {
    "trading_state",
    "symbol_halted",
    "protective_stop",
    "day_rollover",
    "flatten",
    "limit_changed",
    "limit_refused",
}


def _recorded(scenario: golden.Scenario) -> dict[str, object]:
    record: dict[str, object] = golden.load(GOLDEN / golden.SCENARIOS_FILE)[scenario.name]
    return record


def test_golden_when_the_benchmark_timeline_replays_both_ways_then_each_record_is_reproduced(tmp_path: Path) -> None:
    recorded = golden.load(GOLDEN / golden.REPLAY_FILE)

    now = golden.record_replay(tmp_path)  # raises when the fast replay and the live path differ

    assert recorded["decisions"]["orders"]["count"] > recorded["timeline"]["rows"] // 4  # not two empty records
    difference = golden.first_difference(recorded, now)
    assert difference is None, difference


@pytest.mark.parametrize("scenario", golden.SCENARIOS, ids=_NAMES)
def test_golden_when_a_scripted_session_runs_then_its_record_and_journal_bytes_are_reproduced(
    scenario: golden.Scenario, tmp_path: Path
) -> None:
    now, journal = golden.run_scenario(scenario, tmp_path)

    difference = golden.first_difference(_recorded(scenario), now)
    assert difference is None, difference
    assert journal == golden.journal_path(GOLDEN, scenario).read_bytes()


@pytest.mark.parametrize("scenario", golden.SCENARIOS, ids=_NAMES)
def test_golden_when_a_kept_journal_is_opened_then_it_replays_to_the_recorded_state_and_chain_head(
    scenario: golden.Scenario, tmp_path: Path
) -> None:
    recorded = _recorded(scenario)

    replayed = golden.replayed_journal(scenario, golden.journal_path(GOLDEN, scenario), tmp_path)

    assert replayed["chain"] == recorded["chain"]
    assert replayed["rewritten_chain_head"] == replayed["chain"]["head"]
    assert replayed["is_rewritten_same"]  # its events, written again in their groups, give the same bytes
    difference = golden.first_difference(recorded["state"], replayed["state"])
    assert difference is None, difference


def test_golden_when_the_scenarios_are_read_then_they_cover_every_refusal_breaker_and_command() -> None:
    records = golden.load(GOLDEN / golden.SCENARIOS_FILE)
    denials = [line for record in records.values() for line in record["denials"]]
    risk_events = [line for record in records.values() for line in record["risk_events"]]

    assert {line.split(" ")[1].rstrip(":") for line in denials} >= _DENIED_BY
    assert {line.split(" ")[0] for line in risk_events} >= _RISK_KINDS
    assert any(" consecutive_rejects " in line for line in risk_events)  # the venue's rejects halted trading
    assert any(" flash_crash " in line for line in risk_events)
    assert any(" daily_loss " in line and "REDUCING" in line for line in risk_events)
    assert any(record["chain"]["next_seq"] > 0 for record in records.values())
