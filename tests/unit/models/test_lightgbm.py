"""LightGBM through the same lifecycle: walk-forward, holdout, ONNX export with the parity check, served as ONNX."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.dataset import LABELS, Dataset, LabelSpec, build_dataset
from models.lgbm import LightGBMDirectionModel
from models.store import ArtifactStore
from streams.features import FeatureSpec
from streams.inference import LoadedModel
from tests.unit.models.market import MINUTE, T0, market
from tickwave.config import ModelsSettings
from tickwave.modeling import SignalRules, artifact_from_onnx

SPEC = FeatureSpec()
SETTINGS = ModelsSettings(n_estimators=40, max_depth=3, n_jobs=1, folds=3, embargo_bars=5, min_rows=500)
COUNT = 1500


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    features, bars, _ = market(count=COUNT, momentum=0.6)
    return build_dataset(
        features,
        bars,
        SPEC.model_names,
        SPEC.schema_hash,
        LabelSpec(5, 1.0),
        "1m",
        (T0, T0 + COUNT * MINUTE),
        SETTINGS.min_rows,
    )


def test_lightgbm_when_trained_and_saved_then_parity_holds_and_the_export_serves_its_probabilities(
    dataset: Dataset, tmp_path: Path
) -> None:
    model = LightGBMDirectionModel(SETTINGS, SignalRules())

    result = model.train(dataset)
    saved = model.save(result, ArtifactStore(tmp_path / "models"), "lgbm_test", write_report=False)
    again = model.save(model.train(dataset), ArtifactStore(tmp_path / "again"), "lgbm_test", write_report=False)

    artifact = artifact_from_onnx("lgbm_test", 1, saved.onnx_bytes)
    served = LoadedModel(artifact).predict_batch(result.holdout.features)
    native = result.model.predict_proba(result.holdout.features)
    metadata = json.loads((tmp_path / "models" / f"{saved.sha256}.json").read_text())
    assert saved.framework == metadata["framework"] == "lightgbm"
    assert len(result.folds) == SETTINGS.folds and result.metrics()["holdout_log_loss"] < np.log(3)
    assert np.abs(served - native).max() <= SETTINGS.parity_tolerance
    assert 0 <= metadata["parity_max_abs_diff"] <= SETTINGS.parity_tolerance
    assert (artifact.feature_names, artifact.labels, artifact.timeframe) == (SPEC.model_names, LABELS, "1m")
    assert metadata["library_versions"]["lightgbm"] == "4.7.0"
    assert again.sha256 == saved.sha256  # deterministic: the same data trains the same trees, the same bytes
    assert set(result.feature_importance) == set(SPEC.model_names)


def test_float32_safe_thresholds_when_features_sit_on_split_midpoints_then_onnx_decides_as_lightgbm() -> None:
    import lightgbm as lgb

    from models.lgbm import float32_safe_thresholds

    rng = np.random.default_rng(3)
    # Neighbouring float32 values (1 ulp apart): a split's double midpoint rounds to one of them in float32.
    steps = rng.integers(0, 40, size=(3000, 4))
    features = (np.float32(1.0) + steps.astype(np.float32) * np.float32(2.0**-23)).astype(np.float32)
    labels = ((steps[:, 0] > 20).astype(int) + (steps[:, 1] > 15).astype(int) + rng.integers(0, 2, 3000)) % 3
    raw = lgb.LGBMClassifier(
        n_estimators=30, max_depth=4, num_leaves=16, verbose=-1, deterministic=True, force_row_wise=True
    ).fit(features, labels)
    native = raw.predict_proba(features)

    def served(model: lgb.LGBMClassifier) -> np.ndarray:
        exporter = LightGBMDirectionModel(SETTINGS, SignalRules())
        onnx_bytes = exporter.export_onnx(model, [f"f{index}" for index in range(4)], "h", {"timeframe": "1m"})
        return LoadedModel(artifact_from_onnx("t", 1, onnx_bytes)).predict_batch(features).astype(np.float64)

    as_trained = np.abs(served(raw) - native).max()
    raw._Booster = float32_safe_thresholds(raw.booster_)
    safe = np.abs(served(raw) - native).max()

    assert np.abs(raw.predict_proba(features) - native).max() == 0.0  # the same model on float32 features
    assert safe <= 1e-5 < as_trained  # without the fix, values on a midpoint take the other branch in ONNX
