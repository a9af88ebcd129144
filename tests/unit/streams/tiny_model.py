"""A small XGBoost model trained here and exported to ONNX, declared for one timeframe and two symbols."""

from __future__ import annotations

import numpy as np
import xgboost as xgb
from onnxmltools import convert_xgboost
from onnxmltools.convert.common.data_types import FloatTensorType

from streams.features import FeatureSpec
from tickwave.modeling import ModelArtifact

LABELS = ("down", "flat", "up")


def tiny_artifact(
    spec: FeatureSpec,
    model_id: str = "tiny",
    version: int = 1,
    seed: int = 0,
    timeframe: str = "1m",
    symbols: tuple[str, ...] = ("EURUSD", "USDJPY"),
) -> ModelArtifact:
    names = spec.model_names
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(300, len(names))).astype(np.float32)
    labels = (features[:, 0] > 0).astype(int) + (features[:, 1] > 0.5).astype(int)
    model = xgb.XGBClassifier(n_estimators=8, max_depth=3, random_state=seed, n_jobs=1)
    model.fit(features, labels)
    onnx_model = convert_xgboost(model, initial_types=[("features", FloatTensorType([None, len(names)]))])
    return ModelArtifact(
        model_id, version, onnx_model.SerializeToString(), names, spec.schema_hash, LABELS, timeframe, symbols
    )


class StaticProvider:
    """A provider that always names the same champions (tests can swap them)."""

    def __init__(self, *artifacts: ModelArtifact | None) -> None:
        self.artifacts = [artifact for artifact in artifacts if artifact is not None]

    def champions(self) -> list[ModelArtifact]:
        return list(self.artifacts)


def every_timeframe(spec: FeatureSpec, timeframes: tuple[str, ...], symbols: tuple[str, ...]) -> StaticProvider:
    """One champion per timeframe (same model id): the flow predicts on every warm vector of ``symbols``."""
    return StaticProvider(*(tiny_artifact(spec, timeframe=timeframe, symbols=symbols) for timeframe in timeframes))
