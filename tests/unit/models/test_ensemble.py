"""The weighted-vote ensemble: weights by walk-forward skill, the confidence score, one ONNX graph, served with both."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from onnx import ModelProto

from models.base import DirectionModel
from models.dataset import LABELS, Dataset, LabelSpec, build_dataset
from models.ensemble import EnsembleDirectionModel, skill_weights
from models.prior import class_frequencies
from models.store import ArtifactStore
from streams.features import FeatureSpec
from streams.inference import Inference
from streams.signals import signal_from
from tests.unit.models.market import MINUTE, T0, market
from tests.unit.streams.tiny_model import StaticProvider
from tickwave.clock import SystemClock
from tickwave.config import ModelsSettings
from tickwave.contracts import FeatureVector, Signal, decode, encode
from tickwave.modeling import SignalRules, artifact_from_onnx, ensemble_confidence

SPEC = FeatureSpec()
SETTINGS = ModelsSettings(n_estimators=30, max_depth=3, n_jobs=1, folds=3, embargo_bars=5, min_rows=500)
COUNT = 1500


def test_skill_weights_when_hand_checked_then_skill_over_the_uniform_guess_normalised() -> None:
    ln3 = math.log(3)

    assert skill_weights([ln3 - 0.3, ln3 - 0.1]) == pytest.approx([0.75, 0.25])
    assert skill_weights([ln3 - 0.2, ln3 + 0.5]) == pytest.approx([1.0, 0.0])  # worse than guessing: no vote
    assert skill_weights([ln3 + 0.1, ln3 + 0.2]) == pytest.approx([0.5, 0.5])  # nobody has skill: equal votes


def test_skill_weights_when_a_member_beats_the_guess_but_not_the_prior_then_it_gets_no_weight() -> None:
    ln3, prior = math.log(3), 0.85

    weights = skill_weights([0.80, 0.95], prior)  # 0.95: below ln 3 (1.0986), above the prior

    assert weights == pytest.approx([1.0, 0.0])
    assert skill_weights([0.80, 0.95])[1] > 0  # against the uniform guess it would have voted
    assert skill_weights([0.90, 0.95], prior) == pytest.approx([0.5, 0.5])  # nobody beats the prior: equal votes
    assert skill_weights([ln3 - 0.3, ln3 - 0.1], ln3) == pytest.approx([0.75, 0.25])


@dataclass(frozen=True)
class _Constant:
    probabilities: np.ndarray

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        return np.tile(self.probabilities, (len(features), 1))


class _HalfGuessing(DirectionModel[_Constant]):
    # Half the uniform guess, half the training shares, for every row: better than ln 3, worse than the prior.
    framework = "half_guessing"

    def fit(self, features: np.ndarray, labels: np.ndarray) -> _Constant:
        return _Constant(0.5 * np.full(3, 1 / 3) + 0.5 * class_frequencies(labels))

    def to_onnx(self, model: _Constant, width: int) -> ModelProto:
        raise NotImplementedError


def test_ensemble_when_a_member_is_worse_than_the_class_frequency_prior_then_it_gets_no_weight(
    dataset: Dataset,
) -> None:
    model = EnsembleDirectionModel(SETTINGS, SignalRules())
    model.__dict__["members"] = (model.members[0], _HalfGuessing(SETTINGS, SignalRules()))

    result = model.train(dataset)

    metrics = result.metrics()
    noise = float(result.params["wf_log_loss_half_guessing"])
    assert metrics["wf_prior_log_loss"] < noise < math.log(3), (metrics["wf_prior_log_loss"], noise)
    assert float(result.params["wf_log_loss_xgboost"]) < metrics["wf_prior_log_loss"]
    assert float(result.params["weight_half_guessing"]) == 0.0
    assert float(result.params["weight_xgboost"]) == 1.0


def test_ensemble_confidence_when_hand_checked_then_agreement_times_certainty() -> None:
    sharp = [0.0, 0.0, 1.0]
    members = np.array(
        [
            [sharp, [0.2, 0.2, 0.6], [1 / 3, 1 / 3, 1 / 3]],  # member 0 (weight 0.75)
            [sharp, [0.6, 0.2, 0.2], [1 / 3, 1 / 3, 1 / 3]],  # member 1 (weight 0.25)
        ]
    )
    weights = np.array([0.75, 0.25])

    scores = ensemble_confidence(members, weights)

    # Row 0: unanimous and certain -> 1. Row 1: blend (0.3, 0.2, 0.5), only member 0 agrees (0.75).
    blend_row = np.array([0.3, 0.2, 0.5])
    certainty = 1 + (blend_row * np.log(blend_row)).sum() / math.log(3)
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == pytest.approx(0.75 * certainty)
    assert scores[2] == pytest.approx(0.0, abs=1e-9)  # a uniform blend is no information


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


def test_ensemble_when_trained_saved_and_served_then_one_graph_votes_as_trained_and_signals_carry_confidence(
    dataset: Dataset, tmp_path: Path
) -> None:
    model = EnsembleDirectionModel(SETTINGS, SignalRules())

    result = model.train(dataset)
    saved = model.save(result, ArtifactStore(tmp_path / "models"), "ens_test", write_report=False)

    artifact = artifact_from_onnx("ens_test", 4, saved.onnx_bytes)
    weights = np.array([float(result.params["weight_xgboost"]), float(result.params["weight_lightgbm"])])
    assert saved.framework == "ensemble" and weights.sum() == pytest.approx(1.0)
    assert [member.rsplit(":", 1)[0] for member in artifact.members] == ["xgboost", "lightgbm"]
    assert saved.metadata["parity_max_abs_diff"] <= SETTINGS.parity_tolerance
    blended = result.model.predict_proba(result.holdout.features)
    assert np.abs(blended - result.holdout_probabilities).max() < 1e-12
    assert result.holdout_evaluation.metrics.rows == len(result.holdout) and len(result.folds) == SETTINGS.folds

    # Served in the flow's inference: one call, the blended probabilities, the confidence and the members.
    row = result.holdout.features[0]
    vector = FeatureVector(
        symbol="EURUSD",
        timeframe="1m",
        bar_start_ms=T0,
        is_warm=True,
        schema_hash=SPEC.schema_hash,
        values=dict(zip(SPEC.model_names, row.tolist(), strict=True)),
    )
    served = replace(artifact, symbols=("EURUSD",))  # served on the vector's symbol
    prediction = Inference(StaticProvider(served), SPEC.schema_hash, SystemClock()).predict(vector)
    assert prediction is not None and prediction.members == artifact.members
    members = result.model.member_probabilities(result.holdout.features[:1])
    expected = ensemble_confidence(members, result.model.weights)[0]
    assert prediction.confidence == pytest.approx(expected, abs=1e-5)
    assert [prediction.probabilities[label] for label in LABELS] == pytest.approx(blended[0].tolist(), abs=1e-5)
    signal = signal_from(prediction, SignalRules(), T0)
    assert signal.confidence == prediction.confidence and signal.members == artifact.members
    assert decode(encode(signal), Signal) == signal
