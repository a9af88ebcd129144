"""Train on the streams' features in the real warehouse, register a champion, serve it back to the streams."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.warehouse.client import connect
from models.pipeline import train_model
from models.registry import CHAMPION, ModelRegistry
from streams.champions import RegistryModelProvider
from streams.features import FeatureSpec
from streams.inference import LoadedModel
from tests.integration.models.conftest import RANGE_MS, SYMBOLS, StreamsOutput, run_streams
from tickwave.config import Settings


def test_train_when_streams_features_stored_then_champion_registered_and_served_to_the_flow(
    models_settings: Settings, streams_output: StreamsOutput
) -> None:
    outcome = train_model(models_settings, SYMBOLS, RANGE_MS, "pytest")

    entry = outcome.entry
    registry = ModelRegistry(models_settings)
    try:
        stored = registry.entry(entry.model_id, entry.model_version)
        actions = [(event.action, event.to_stage) for event in registry.events(entry.model_id)]
    finally:
        registry.close()
    store = models_settings.state_path / "models"
    assert outcome.decision is not None and outcome.decision.is_promoted, outcome.decision
    assert (stored.stage, stored.model_version, stored.stage_changed_by) == (CHAMPION, 1, "pytest")
    assert stored.artifact_uri == f"models/{stored.artifact_sha256}.onnx"
    assert (store / f"{stored.artifact_sha256}.onnx").is_file()
    assert (store / f"{stored.artifact_sha256}.json").is_file()
    assert (store / f"{stored.artifact_sha256}.report" / "report.html").is_file()
    assert stored.feature_schema_hash == FeatureSpec().schema_hash
    assert (stored.trained_from_ms, stored.trained_to_ms) == RANGE_MS
    assert stored.params["symbols"] == "EURUSD,USDJPY" and stored.params["timeframe"] == "1m"
    assert stored.metrics["holdout_log_loss"] == pytest.approx(outcome.result.metrics()["holdout_log_loss"])
    assert actions == [("registered", "candidate"), ("promoted", "champion")]
    assert outcome.leakage.compared_rows > 0 and outcome.leakage.leaky_features() == []

    # The streams' side: the provider serves the champion, and the dataflow predicts with it.
    provider = RegistryModelProvider(models_settings)
    try:
        served = provider.champions()
        assert [(a.model_id, a.model_version, a.timeframe, a.symbols) for a in served] == [
            (entry.model_id, 1, "1m", SYMBOLS)
        ]
        artifact = served[0]
        warm = next(vector for vector in streams_output.features if vector.is_warm and vector.timeframe == "1m")
        row = np.array([[warm.values[name] for name in artifact.feature_names]], dtype=np.float32)
        probabilities = LoadedModel(artifact).predict(row)
        assert set(probabilities) == {"down", "flat", "up"} and sum(probabilities.values()) == pytest.approx(1, 1e-5)

        out = run_streams(streams_output.raw[: 2 * 4 * 90], provider)  # 90 minutes of both symbols
    finally:
        provider.close()
    # The flow also closes (and warms) 1 s bars: the 1-minute model scores only its own timeframe.
    assert any(vector.is_warm and vector.timeframe == "1s" for vector in out["features"])
    assert {prediction.timeframe for prediction in out["predictions"]} == {"1m"}
    assert len(out["predictions"]) == 2 * (90 - 49)  # every warm 1-minute vector, nothing else
    assert {(p.model_id, p.model_version) for p in out["predictions"]} == {(entry.model_id, 1)}
    assert len(out["signals"]) == len(out["predictions"])
    assert {signal.timeframe for signal in out["signals"]} == {"1m"}


def test_provider_when_no_champion_then_none(models_settings: Settings) -> None:
    provider = RegistryModelProvider(models_settings)
    try:
        assert provider.champions() == []
    finally:
        provider.close()


def test_provider_when_warehouse_unreachable_from_the_start_then_none_without_raising(
    models_settings: Settings,
) -> None:
    unreachable = models_settings.model_copy(
        update={"clickhouse": models_settings.clickhouse.model_copy(update={"url": "http://127.0.0.1:9"})}
    )

    assert RegistryModelProvider(unreachable).champions() == []  # logged: the flow runs on without a model


def test_training_data_when_read_back_then_every_streams_row_is_in_the_warehouse(
    models_settings: Settings, streams_output: StreamsOutput
) -> None:
    client = connect(models_settings)
    try:
        ours = {"s": list(SYMBOLS)}  # the database is shared with other models tests (own symbols)
        features = client.command(
            "SELECT count() FROM features FINAL WHERE timeframe = '1m' AND symbol IN {s:Array(String)}", parameters=ours
        )
        bars = client.command("SELECT count() FROM bars_1m FINAL WHERE symbol IN {s:Array(String)}", parameters=ours)
    finally:
        client.close()

    assert features == sum(1 for vector in streams_output.features if vector.timeframe == "1m")
    assert bars == sum(1 for bar in streams_output.bars if bar.timeframe == "1m") == 2 * 1200
