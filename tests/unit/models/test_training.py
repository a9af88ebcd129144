"""The lifecycle base class with the XGBoost model: walk-forward, holdout, export, parity, store, serving."""

from __future__ import annotations

import json
import math
from itertools import pairwise
from pathlib import Path

import numpy as np
import onnx
import pytest

from models.base import TrainingResult
from models.dataset import LABELS, Dataset, LabelSpec, build_dataset, class_counts
from models.errors import NotEnoughDataError, ParityError, SchemaMismatchError
from models.folds import holdout_split, walk_forward
from models.report import PLOTS
from models.serving import ServingModel, artifact_from_onnx
from models.store import ArtifactStore, sha256_of
from models.xgb import XGBoostDirectionModel
from streams.features import FeatureSpec
from streams.inference import LoadedModel
from tests.unit.models.market import MINUTE, T0, market
from tickwave.clock import ManualClock
from tickwave.config import ModelsSettings
from tickwave.errors import DataQualityError
from tickwave.modeling import ArtifactMetadataError, SignalRules

SPEC = FeatureSpec()
SAVED_AT_MS = 1_700_000_000_000
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


@pytest.fixture(scope="module")
def model() -> XGBoostDirectionModel:
    return XGBoostDirectionModel(SETTINGS, SignalRules(), clock=ManualClock(SAVED_AT_MS))


@pytest.fixture(scope="module")
def trained(model: XGBoostDirectionModel, dataset: Dataset) -> TrainingResult:
    return model.train(dataset)


def test_train_when_walking_forward_then_folds_follow_each_other_and_precede_the_holdout(
    trained: TrainingResult, dataset: Dataset
) -> None:
    assert len(trained.folds) == SETTINGS.folds
    ends = [(fold.test_start_ms, fold.test_end_ms) for fold in trained.folds]
    assert all(earlier[1] <= later[0] for earlier, later in pairwise(ends))
    assert ends[-1][1] <= int(trained.holdout.times_ms.min())
    assert trained.development_rows + len(trained.holdout) < len(dataset)  # the purge gap and embargo removed rows
    assert trained.walk_forward.metrics.rows == sum(fold.test_rows for fold in trained.folds)


def test_train_when_the_market_has_momentum_then_the_model_beats_the_class_frequencies(
    trained: TrainingResult,
) -> None:
    counts = np.array(list(class_counts(trained.holdout.labels).values()), dtype=float)
    frequencies = counts / counts.sum()
    baseline = -float(np.sum(frequencies * np.log(np.where(frequencies > 0, frequencies, 1.0))))

    assert trained.holdout_evaluation.metrics.log_loss < baseline
    assert trained.holdout_evaluation.metrics.log_loss < trained.metrics()["holdout_prior_log_loss"]
    assert trained.holdout_evaluation.metrics.auc is not None and trained.holdout_evaluation.metrics.auc > 0.5


def test_train_when_done_then_the_prior_uses_the_training_labels_shares_only(
    trained: TrainingResult, dataset: Dataset
) -> None:
    development, holdout = holdout_split(
        dataset.times_ms, dataset.label_end_ms, SETTINGS.holdout_fraction, SETTINGS.horizon_bars, SETTINGS.embargo_bars
    )
    shares = np.bincount(dataset.labels[development], minlength=3) / len(development)
    folds = walk_forward(
        dataset.times_ms[development],
        dataset.label_end_ms[development],
        SETTINGS.folds,
        SETTINGS.horizon_bars,
        SETTINGS.embargo_bars,
    )
    fold_shares = [
        np.bincount(dataset.labels[development][fold.train], minlength=3) / len(fold.train) for fold in folds
    ]
    fold_labels = [dataset.labels[development][fold.test] for fold in folds]

    metrics = trained.metrics()

    assert [metrics[f"train_share_{label}"] for label in LABELS] == pytest.approx(shares.tolist(), abs=1e-12)
    by_hand = -np.mean(np.log(shares[dataset.labels[holdout]]))
    assert metrics["holdout_prior_log_loss"] == pytest.approx(by_hand, rel=1e-12)
    wf_by_hand = -np.mean(
        np.concatenate([np.log(each[labels]) for each, labels in zip(fold_shares, fold_labels, strict=True)])
    )
    assert metrics["wf_prior_log_loss"] == pytest.approx(wf_by_hand, rel=1e-12)
    # Not the holdout's own shares (that prior would have looked ahead): here the two differ.
    holdout_shares = np.bincount(dataset.labels[holdout], minlength=3) / len(holdout)
    assert np.abs(holdout_shares - shares).max() > 1e-3


def test_train_when_done_then_metrics_cover_holdout_and_walk_forward(trained: TrainingResult) -> None:
    metrics = trained.metrics()

    for name in (
        "log_loss",
        "auc",
        "accuracy",
        "brier",
        "calibration_error",
        "precision",
        "recall",
        "pnl_pips",
        "pnl_account",
        "sharpe",
        "max_drawdown_account",
        "turnover",
        "hit_rate",
    ):
        assert f"holdout_{name}" in metrics and f"wf_{name}" in metrics, name
        assert math.isfinite(metrics[f"holdout_{name}"])
    assert set(trained.feature_importance) == set(SPEC.model_names)


def test_save_when_exported_then_parity_holds_and_artifact_is_content_addressed(
    model: XGBoostDirectionModel, trained: TrainingResult, tmp_path: Path
) -> None:
    store = ArtifactStore(tmp_path / "models")

    saved = model.save(trained, store, "xgb_test")
    again = model.save(trained, store, "xgb_test", write_report=False)

    onnx_path = store.onnx_path(saved.sha256)
    assert sha256_of(onnx_path.read_bytes()) == saved.sha256 == again.sha256
    assert sorted(path.name for path in store.root.glob("*.onnx")) == [f"{saved.sha256}.onnx"]
    metadata = json.loads(store.metadata_path(saved.sha256).read_text())
    assert metadata["feature_names"] == list(SPEC.model_names)
    assert metadata["schema_hash"] == SPEC.schema_hash
    assert metadata["labels"] == list(LABELS)
    assert metadata["created_at"] == "2023-11-14T22:13:20.000+00:00"  # the injected clock's time
    assert "t+5" in metadata["label_definition"] and metadata["data_range_ms"] == [T0, T0 + COUNT * MINUTE]
    assert {"xgboost-cpu", "onnxruntime", "onnxmltools", "python"} <= set(metadata["library_versions"])
    assert metadata["metrics"]["holdout_log_loss"] == trained.metrics()["holdout_log_loss"]
    assert 0 <= metadata["parity_max_abs_diff"] <= SETTINGS.parity_tolerance
    report = store.report_dir(saved.sha256)
    assert {path.name for path in report.iterdir()} == {"report.html", *PLOTS}
    assert all((report / name).read_bytes().startswith(b"\x89PNG") for name in PLOTS)
    assert all(name in (report / "report.html").read_text() for name in PLOTS)
    page = (report / "report.html").read_text()
    assert "prior_log_loss (class frequencies)" in page and "edge over the class-frequency prior" in page


def test_save_when_export_differs_beyond_tolerance_then_parity_error_and_nothing_stored(
    trained: TrainingResult, tmp_path: Path
) -> None:
    strict = XGBoostDirectionModel(SETTINGS.model_copy(update={"parity_tolerance": 1e-12}), SignalRules())
    store = ArtifactStore(tmp_path / "models")

    with pytest.raises(ParityError, match="not registered"):
        strict.save(trained, store, "xgb_test")

    assert not store.root.exists()


def test_serving_when_artifact_loaded_then_row_batch_and_streams_agree(
    model: XGBoostDirectionModel, trained: TrainingResult, tmp_path: Path
) -> None:
    saved = model.save(trained, ArtifactStore(tmp_path), "xgb_test", write_report=False)
    artifact = artifact_from_onnx("xgb_test", 3, saved.onnx_bytes)
    serving = ServingModel(artifact, expected_schema_hash=SPEC.schema_hash)
    features = trained.holdout.features[:5]

    batch = serving.predict_batch(features)
    by_name = serving.predict_row(dict(zip(SPEC.model_names, features[0].tolist(), strict=True)))
    streams = LoadedModel(artifact).predict(features[:1])

    assert artifact.feature_names == SPEC.model_names and artifact.labels == LABELS and artifact.model_version == 3
    properties = {prop.key: prop.value for prop in onnx.load_from_string(saved.onnx_bytes).metadata_props}
    assert properties["tickwave.timeframe"] == "1m" and properties["tickwave.model_id"] == "xgb_test"
    assert (artifact.timeframe, artifact.symbols) == ("1m", trained.dataset.symbols)  # where it may serve
    assert artifact.serves(trained.dataset.symbols[0], "1m") and not artifact.serves(trained.dataset.symbols[0], "1s")
    assert "t+5" in properties["tickwave.label"]
    assert batch.shape == (5, 3)
    assert np.abs(batch - trained.holdout_probabilities[:5]).max() <= SETTINGS.parity_tolerance
    assert by_name == pytest.approx(dict(zip(LABELS, batch[0].tolist(), strict=True)), abs=1e-7)
    assert streams == pytest.approx(by_name)


def test_serving_when_schema_differs_then_refused_at_load(
    model: XGBoostDirectionModel, trained: TrainingResult, tmp_path: Path
) -> None:
    saved = model.save(trained, ArtifactStore(tmp_path), "xgb_test", write_report=False)
    artifact = artifact_from_onnx("xgb_test", 1, saved.onnx_bytes)

    with pytest.raises(SchemaMismatchError, match="trained on feature schema"):
        ServingModel(artifact, expected_schema_hash="0000000000000000")
    with pytest.raises(SchemaMismatchError, match="row lacks features rsi_14"):
        ServingModel(artifact).predict_row({name: 1.0 for name in SPEC.model_names if name != "rsi_14"})


def test_artifact_from_onnx_when_metadata_missing_then_refused(trained: TrainingResult) -> None:
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    bare = convert_xgboost(trained.model, initial_types=[("features", FloatTensorType([None, len(SPEC.model_names)]))])

    with pytest.raises(ArtifactMetadataError, match="lacks metadata"):
        artifact_from_onnx("bare", 1, bare.SerializeToString())
    assert isinstance(bare, onnx.ModelProto)


def test_store_when_artifact_corrupted_then_refused(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    digest = store.put(b"model bytes", {"model_id": "x"})
    store.onnx_path(digest).write_bytes(b"other bytes")

    with pytest.raises(DataQualityError, match="does not match its SHA-256"):
        store.read(digest)


def test_train_when_a_fold_lacks_a_class_then_not_enough_data(model: XGBoostDirectionModel, dataset: Dataset) -> None:
    frame = dataset.frame.copy()
    early = frame["bar_start_ms"] < int(np.quantile(frame["bar_start_ms"], 0.3))
    frame.loc[early & (frame["label"] == 1), "label"] = 0  # no "flat" in the first fold's training rows
    skewed = Dataset(
        frame,
        dataset.feature_names,
        dataset.schema_hash,
        dataset.label_spec,
        dataset.timeframe,
        dataset.from_ms,
        dataset.to_ms,
    )

    with pytest.raises(NotEnoughDataError, match="training rows of fold 0 is labelled flat"):
        model.train(skewed)


def test_train_when_range_too_short_for_a_fold_then_not_enough_data(dataset: Dataset) -> None:
    wide_gap = XGBoostDirectionModel(SETTINGS.model_copy(update={"embargo_bars": 2000}), SignalRules())

    with pytest.raises(NotEnoughDataError, match="no walk-forward fold or holdout"):
        wide_gap.train(dataset)
