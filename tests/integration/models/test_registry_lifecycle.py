"""Promotion, refusal, rollback and their audit trail in the real warehouse; bad input registers nothing."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import msgspec
import numpy as np
import pytest

from models.dataset import LABELS, direction_labels
from models.errors import LeakageError, NotEnoughDataError, PromotionRefused, RegistryError, SchemaMismatchError
from models.pipeline import train_model
from models.registry import CANDIDATE, CHAMPION, RETIRED, ModelRegistry
from streams.champions import RegistryModelProvider
from streams.features import FeatureSpec
from tests.integration.models.conftest import RANGE_MS, SYMBOLS, StreamsOutput, write
from tickwave.config import Settings
from tickwave.contracts import Bar, FeatureVector, Prediction
from tickwave.modeling import CHALLENGER


def with_models(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"models": settings.models.model_copy(update=changes)})


def registered(settings: Settings) -> tuple[list[Any], list[Any]]:
    registry = ModelRegistry(settings)
    try:
        return registry.entries(settings.models.model_id), registry.events(settings.models.model_id)
    finally:
        registry.close()


def test_registry_when_candidates_compete_then_promotion_refusal_and_rollback_are_audited(
    models_settings: Settings,
) -> None:
    # One tree hardly trades: judged without the P&L baselines (tested below), it only needs the sanity checks.
    weak = with_models(models_settings, n_estimators=1, learning_rate=0.05, baselines=(), min_trades=0)
    strong = with_models(models_settings, n_estimators=40, max_depth=1, learning_rate=0.1)
    demanding = with_models(strong, promotion_margin=0.9)  # the same model again: it can beat v2 by no margin
    model_id = models_settings.models.model_id

    first = train_model(weak, SYMBOLS, RANGE_MS, "pytest-weak")
    second = train_model(strong, SYMBOLS, RANGE_MS, "pytest-strong")
    third = train_model(demanding, SYMBOLS, RANGE_MS, "pytest-demanding")

    assert first.entry.stage == CHAMPION  # the first model only has to pass the sanity checks
    assert first.decision is not None and "not judged on P&L" in " ".join(first.decision.notes)
    assert second.decision is not None and second.decision.is_promoted, second.decision
    assert second.decision.figures["candidate_log_loss"] < second.decision.figures["champion_log_loss"]
    figures = second.decision.figures  # beat both baselines on the holdout, after costs, with enough trades
    assert figures["candidate_pnl_account"] > max(
        figures["baseline_flat_pnl_account"], figures["baseline_last_direction_pnl_account"]
    )
    assert figures["candidate_trades"] >= figures["min_trades"] == 10
    assert third.decision is not None and not third.decision.is_promoted
    assert "does not beat the champion" in third.decision.failures[0]
    entries, _ = registered(models_settings)
    assert [(entry.model_version, entry.stage) for entry in entries] == [(3, CANDIDATE), (2, CHAMPION), (1, RETIRED)]
    assert entries[2].stage_reason == f"replaced by {model_id} v2"

    registry = ModelRegistry(models_settings)
    provider = RegistryModelProvider(models_settings)
    try:
        with pytest.raises(PromotionRefused, match="not promoted"):
            registry.promote(model_id, 3, "pytest-again")
        served_before = provider.champions()
        restored = registry.rollback(model_id, "pytest-oncall", "bad fills after the release")
        served_after = provider.champions()
        with pytest.raises(RegistryError, match="nothing to roll back to"):
            registry.rollback(model_id, "pytest-oncall")
    finally:
        provider.close()
        registry.close()

    entries, events = registered(models_settings)
    assert (restored.model_version, restored.stage, restored.stage_changed_by) == (1, CHAMPION, "pytest-oncall")
    assert [(entry.model_version, entry.stage) for entry in entries] == [(3, CANDIDATE), (2, RETIRED), (1, CHAMPION)]
    assert [(artifact.timeframe, artifact.model_version) for artifact in served_before] == [("1m", 2)]
    assert [(artifact.timeframe, artifact.model_version) for artifact in served_after] == [("1m", 1)]
    trail = [(event.model_version, event.action, event.actor) for event in events]
    assert sorted(trail) == sorted(
        [
            (1, "registered", "pytest-weak"),
            (1, "promoted", "pytest-weak"),
            (2, "registered", "pytest-strong"),
            (2, "promoted", "pytest-strong"),
            (1, "retired", "pytest-strong"),
            (3, "registered", "pytest-demanding"),
            (3, "promotion_refused", "pytest-demanding"),
            (3, "promotion_refused", "pytest-again"),
            (2, "rolled_back", "pytest-oncall"),
            (1, "restored", "pytest-oncall"),
        ]
    )
    times = {(event.model_version, event.action): event.occurred_at_ms for event in events}
    assert times[(1, "promoted")] < times[(2, "promoted")] < times[(2, "rolled_back")]
    rolled_back = next(event for event in events if event.action == "rolled_back")
    assert rolled_back.reason == "bad fills after the release"
    refused = next(event for event in events if event.action == "promotion_refused")
    assert refused.metrics["champion_log_loss"] > 0 and "does not beat" in refused.reason
    promoted = next(event for event in events if (event.model_version, event.action) == (2, "promoted"))
    assert {
        "candidate_pnl_account",
        "candidate_trades",
        "baseline_flat_pnl_account",
        "baseline_last_direction_pnl_account",
        "min_trades",
    } <= set(promoted.metrics)


def test_train_when_too_few_holdout_trades_then_refused_with_each_criterion_audited(models_settings: Settings) -> None:
    picky = with_models(models_settings, min_trades=100_000)

    outcome = train_model(picky, SYMBOLS, RANGE_MS, "pytest-picky")

    assert outcome.decision is not None and not outcome.decision.is_promoted
    assert outcome.entry.stage == CANDIDATE
    assert any("fewer than models.min_trades (100000)" in reason for reason in outcome.decision.failures)
    _, events = registered(picky)
    refused = next(event for event in events if event.action == "promotion_refused")
    assert refused.metrics["min_trades"] == 100_000
    assert refused.metrics["candidate_trades"] == outcome.decision.figures["candidate_trades"] > 0
    assert "baseline_last_direction_pnl_account" in refused.metrics and "fewer than" in refused.reason


def assert_nothing_registered(settings: Settings) -> None:
    entries, events = registered(settings)
    store = settings.state_path / "models"
    assert entries == [] and events == []
    assert not store.exists() or not any(store.iterdir())


def test_train_when_a_stored_feature_leaks_then_leakage_error_and_nothing_registered(
    models_settings: Settings, streams_output: StreamsOutput
) -> None:
    # A copy of EURUSD under another symbol whose logret_1 is the next bar's: what a bad backfill leaves.
    bars = [bar for bar in streams_output.bars if bar.symbol == "EURUSD" and bar.timeframe == "1m"]
    vectors = [vector for vector in streams_output.features if vector.symbol == "EURUSD" and vector.timeframe == "1m"]
    leaked = []
    for vector, following in pairwise(vectors):
        values = {**vector.values, "logret_1": following.values["logret_1"]} if vector.is_warm else vector.values
        leaked.append(
            FeatureVector(
                symbol="LEAKY",
                timeframe="1m",
                bar_start_ms=vector.bar_start_ms,
                values=values,
                is_warm=vector.is_warm,
                schema_hash=vector.schema_hash,
            )
        )
    database = models_settings.clickhouse.database
    write(models_settings, database, [*(msgspec.structs.replace(bar, symbol="LEAKY") for bar in bars), *leaked])

    with pytest.raises(LeakageError, match=r"logret_1: \d+/\d+ differ"):
        train_model(models_settings, ["LEAKY"], RANGE_MS, "pytest")

    assert_nothing_registered(models_settings)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"range_ms": (RANGE_MS[0], RANGE_MS[0] + 90 * 60_000)}, NotEnoughDataError, "labelled rows"),
        ({"symbols": ["NOSUCH"]}, NotEnoughDataError, "0 labelled rows"),
        ({"spec": FeatureSpec(rsi_period=7)}, SchemaMismatchError, "feature schema"),
        ({"settings": {"dead_zone_bps": 10_000.0}}, NotEnoughDataError, "single class"),
    ],
)
def test_train_when_input_is_bad_then_clear_error_and_nothing_registered(
    models_settings: Settings, change: dict[str, Any], error: type[Exception], match: str
) -> None:
    settings = with_models(models_settings, **change.get("settings", {}))

    with pytest.raises(error, match=match):
        train_model(
            settings,
            change.get("symbols", SYMBOLS),
            change.get("range_ms", RANGE_MS),
            "pytest",
            spec=change.get("spec"),
        )

    assert_nothing_registered(settings)


def test_rollback_when_no_champion_then_registry_error_and_nothing_written(models_settings: Settings) -> None:
    registry = ModelRegistry(models_settings)
    try:
        with pytest.raises(RegistryError, match="has no champion to roll back"):
            registry.rollback(models_settings.models.model_id, "pytest")
        with pytest.raises(RegistryError, match="v7 is not registered"):
            registry.promote(models_settings.models.model_id, 7, "pytest")
    finally:
        registry.close()

    assert_nothing_registered(models_settings)


def shadow_predictions(
    settings: Settings, bars: list[Bar], version: tuple[str, int], role: str, hit: float
) -> list[Prediction]:
    """Every 10th labelled 1 min bar, predicted by ``(model_id, version)`` with ``hit`` on what happened.

    ``hit`` 1/3: a coin; higher: a good model.
    """
    models = settings.models
    out = []
    for symbol in SYMBOLS:
        series = sorted(
            (bar for bar in bars if bar.symbol == symbol and bar.timeframe == "1m"), key=lambda bar: bar.start_ms
        )
        labels = direction_labels(
            np.array([bar.mid_close for bar in series]), models.horizon_bars, models.dead_zone_bps
        )
        for bar, label in list(zip(series, labels, strict=True))[::10]:
            if label < 0:
                continue
            probabilities = {name: hit if index == label else (1 - hit) / 2 for index, name in enumerate(LABELS)}
            out.append(
                Prediction(
                    symbol=symbol,
                    timeframe="1m",
                    bar_start_ms=bar.start_ms,
                    model_id=version[0],
                    model_version=version[1],
                    probabilities=probabilities,
                    inference_latency_us=50.0,
                    predicted_at_ms=bar.start_ms + 60_000,
                    role=role,
                )
            )
    return out


def test_promote_when_a_challenger_of_another_model_id_shadowed_then_judged_live_and_takes_the_slot(
    models_settings: Settings, streams_output: StreamsOutput
) -> None:
    weak = with_models(models_settings, n_estimators=1, baselines=(), min_trades=0)
    model_id = models_settings.models.model_id
    challenger_id = f"{model_id}_challenger"
    strong = with_models(models_settings, model_id=challenger_id, n_estimators=40, max_depth=1, learning_rate=0.1)
    train_model(weak, SYMBOLS, RANGE_MS, "pytest-weak")  # the champion of the served slot
    train_model(strong, SYMBOLS, RANGE_MS, "pytest-strong", promote=False)  # a candidate of its own model id
    registry = ModelRegistry(models_settings)
    provider = RegistryModelProvider(models_settings)  # serves the slot of models.model_id
    try:
        with pytest.raises(RegistryError, match="has no 1m champion"):
            registry.shadow(challenger_id, 1, "pytest-shadow", against=f"{model_id}_unknown")
        shadowed = registry.shadow(challenger_id, 1, "pytest-shadow", against=model_id)
        served = sorted((artifact.model_id, artifact.model_version, artifact.role) for artifact in provider.champions())
        # What the flow stored while it scored the challenger in shadow under its own id (1/3: the champion is a
        # coin; the challenger sees more).
        bars = streams_output.bars
        write(
            models_settings,
            models_settings.clickhouse.database,
            [
                *shadow_predictions(models_settings, bars, (model_id, 1), CHAMPION, 1 / 3),
                *shadow_predictions(models_settings, bars, (challenger_id, 1), CHALLENGER, 0.6),
            ],
        )
        with pytest.raises(PromotionRefused, match=r"fewer than models\.shadow_min_days"):
            ModelRegistry(with_models(models_settings, shadow_min_days=1.0), registry.client).promote(
                challenger_id, 1, "pytest-too-soon"
            )
        decision = ModelRegistry(with_models(models_settings, shadow_min_days=0.5), registry.client).promote(
            challenger_id, 1, "pytest-shadowed"
        )
        served_promoted = [(artifact.model_id, artifact.role) for artifact in provider.champions()]
        restored = registry.rollback(model_id, "pytest-oncall", "the challenger traded badly")
        served_restored = [(artifact.model_id, artifact.role) for artifact in provider.champions()]
        champion_events, challenger_events = registry.events(model_id), registry.events(challenger_id)
    finally:
        provider.close()
        registry.close()

    assert shadowed.stage == CHALLENGER and shadowed.slot == model_id
    assert served == [(model_id, 1, CHAMPION), (challenger_id, 1, CHALLENGER)]  # scored beside the champion
    assert served_promoted == [(challenger_id, CHAMPION)]  # the only champion of the slot: the one that trades
    assert served_restored == [(model_id, CHAMPION)] and restored.name == f"{model_id} v1"
    refused = next(event for event in challenger_events if event.action == "promotion_refused")
    promoted = next(event for event in challenger_events if event.action == "promoted")
    for event in (refused, promoted):  # each criterion's value, in the audit trail
        assert 0.5 < event.metrics["shadow_days"] < 1.0  # the fixture's 20 hours
        assert event.metrics["shadow_rows"] > 100
        assert event.metrics["challenger_live_log_loss"] < event.metrics["champion_live_log_loss"]
    assert refused.metrics["shadow_min_days"] == 1.0 and promoted.metrics["shadow_min_days"] == 0.5
    assert f"champion {model_id} v1" in promoted.reason
    assert decision.figures["champion_live_log_loss"] == pytest.approx(np.log(3))
    assert [event.action for event in challenger_events] == [
        "registered",
        "shadowed",
        "promotion_refused",
        "promoted",
        "rolled_back",
    ]
    assert [(event.action, event.reason) for event in champion_events][-2:] == [
        ("retired", f"replaced by {challenger_id} v1"),
        ("restored", f"restored by rolling back {challenger_id} v1: the challenger traded badly"),
    ]
