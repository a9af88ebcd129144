"""Gates that know what "no edge" looks like, on the real training path.

Two synthetic markets of the same volatility (``testkit.planted_edge``) run as ticks through
the streams' dataflow into the models tests' database, then through ``train_model``
(what ``tickwave train`` runs): one has a planted edge (bar returns an AR(1) with
``PHI = -0.6``: the next minute's direction follows the minute's own log return, the
feature ``logret_1``, 70 % of the time), which the pipeline must find and promote, its P&L
after costs on the execution engine beating both baselines in most walk-forward windows;
the other is a random walk, which it must refuse, the class-frequency prior's gate saying
why in ``tickwave train``'s verdict, beside the per-fold table. The edge is strong enough to
pay its costs in each window of ~780 rows: at ``PHI = -0.4`` (63 %) the model is as right
but its P&L after costs is noise around zero window by window (won 2 of 4), and the
walk-forward judgement rightly refuses it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from adapters.endpoints import Endpoint
from app.cli import app
from models.dataset import DOWN, FLAT, UP
from models.fold_figures import HOLDOUT, folds_table, judged_folds
from models.pipeline import train_model
from models.registry import CANDIDATE, CHAMPION, ModelRegistry
from testkit.planted_edge import direction_hit_rate, planted_edge_ticks
from tests.integration.models.conftest import MODELS, cli_environment, external_settings, stream_into
from tickwave.config import Settings, StreamsSettings

MINUTES = 2000
# Recent minutes (the warehouse keeps features 180 days), ending an hour ago.
END_MS = (time.time_ns() // 1_000_000 // 3_600_000 - 1) * 3_600_000
RANGE_MS = (END_MS - MINUTES * 60_000, END_MS)
PHI, VOLATILITY = -0.6, 2e-4  # the planted edge, and both markets' volatility of a minute's log return
# symbol -> seed; symbols execution.risk.allowed_symbols trades, none of SYMBOLS (the other tests' own)
EDGE = {"GBPUSD": 21, "AUDUSD": 22}
RANDOM_WALK = {"USDCHF": 23, "XAUUSD": 24}
MINUTE_BARS = StreamsSettings(timeframes=("1m",), late_wait_ms=500, close_on_wall_clock=False, model_refresh_s=0.01)
# The next bar's direction; a dead zone of 0.2 bp leaves ~8 % of the minutes flat.
LABELS = {"horizon_bars": 1, "dead_zone_bps": 0.2}


@pytest.fixture(scope="module")
def markets_database(warehouse_settings: Settings, models_database: str) -> str:
    """The models tests' database, plus the dataflow's 1 min bars and features of both markets (the same minutes).

    Their symbols are none of the other models tests' (which read theirs by symbol).
    """
    ticks = sorted(
        [
            *planted_edge_ticks(EDGE, RANGE_MS[0], 60_000, MINUTES, PHI, VOLATILITY),
            *planted_edge_ticks(RANDOM_WALK, RANGE_MS[0], 60_000, MINUTES, 0.0, VOLATILITY),
        ],
        key=lambda tick: (tick.time_ms, tick.symbol),
    )
    stream_into(warehouse_settings, models_database, ticks, MINUTE_BARS, END_MS + 3_600_000)
    return models_database


def test_train_when_the_market_has_a_planted_edge_then_the_edge_is_found_and_promoted(
    warehouse_settings: Settings, warehouse_endpoint: Endpoint, markets_database: str, tmp_path: Path
) -> None:
    settings = external_settings(warehouse_settings, warehouse_endpoint, markets_database, tmp_path / "state", **LABELS)

    outcome = train_model(settings, tuple(EDGE), RANGE_MS, "pytest-planted-edge")

    decision, metrics = outcome.decision, outcome.entry.metrics
    assert decision is not None and decision.is_promoted, decision
    assert outcome.entry.stage == CHAMPION
    # Found: below the prior's log loss on the holdout and out of sample in the walk-forward ...
    assert decision.figures["candidate_log_loss"] < 0.97 * decision.figures["prior_log_loss"], decision.figures
    assert metrics["holdout_log_loss"] < metrics["holdout_prior_log_loss"]
    assert metrics["wf_log_loss"] < metrics["wf_prior_log_loss"]
    # ... calling the holdout's moves about as often right as the planted rule itself (sign of PHI x logret_1).
    holdout = outcome.result.holdout
    probabilities = outcome.result.holdout_probabilities
    moved = holdout.labels != FLAT
    went_up = holdout.labels[moved] == UP
    model_hits = float(np.mean((probabilities[moved, UP] > probabilities[moved, DOWN]) == went_up))
    rule_hits = float(np.mean((PHI * holdout.frame["logret_1"].to_numpy()[moved] > 0) == went_up))
    assert abs(rule_hits - direction_hit_rate(PHI)) < 0.08, rule_hits  # the planted strength, on these rows
    assert model_hits > rule_hits - 0.04, (model_hits, rule_hits)
    # ... and trading it after costs beats both baselines (last_direction loses in a mean-reverting market).
    assert decision.figures["candidate_pnl_account"] > max(decision.figures["baseline_last_direction_pnl_account"], 0)
    # ... and not on the holdout alone: walk-forward, in at least models.promotion_min_fold_share of the windows.
    folds = judged_folds(decision.figures, settings.models.baselines)
    assert [fold.name for fold in folds] == ["0", "1", "2", HOLDOUT], decision.figures
    assert decision.figures["folds_won"] >= 3 and decision.figures["min_fold_share"] == 0.6, folds_table(folds)
    assert all(fold.candidate.trades > 0 for fold in folds)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M")


def test_train_when_the_market_is_a_random_walk_then_the_prior_gate_refuses_it_in_the_verdict(
    warehouse_settings: Settings,
    warehouse_endpoint: Endpoint,
    markets_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.cli.common import console

    monkeypatch.setattr(console, "_width", 250)  # rich keeps the width it was created with: no wrapped reasons
    settings = external_settings(warehouse_settings, warehouse_endpoint, markets_database, tmp_path / "state", **LABELS)
    runner = CliRunner(env=cli_environment(settings, tmp_path, {**MODELS, **LABELS}))

    trained = runner.invoke(
        app, ["train", "--symbols", ",".join(RANDOM_WALK), "--from", iso(RANGE_MS[0]), "--to", iso(RANGE_MS[1])]
    )

    assert trained.exit_code == 0, trained.output
    assert "not promoted:" in trained.output and "prior log loss" in trained.output, trained.output
    assert "is not below the class-frequency prior's" in trained.output, trained.output
    registry = ModelRegistry(settings)
    try:
        entry = registry.entry(str(settings.models.model_id), 1)
        refused = [event for event in registry.events(entry.model_id) if event.action == "promotion_refused"]
    finally:
        registry.close()
    assert entry.stage == CANDIDATE and len(refused) == 1
    figures = refused[0].metrics
    assert (
        figures["candidate_log_loss"] >= figures["prior_log_loss"]
        or figures["wf_log_loss"] >= figures["wf_prior_log_loss"]
    ), figures
    assert "no edge over the label frequencies" in refused[0].reason
    assert figures["folds_judged"] == 4  # three walk-forward folds and the holdout, in the verdict's table
    assert "fold 0 " in trained.output, trained.output
    assert "last_direction P&L / trades / hit / max dd" in trained.output, trained.output
