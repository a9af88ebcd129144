"""A weighted-vote ensemble of the direction models, with a confidence score, served as one ONNX graph.

**Members and weights.** Each member (XGBoost, LightGBM) runs the whole lifecycle on the
same dataset: the same folds, the same holdout. A member's weight is its walk-forward
skill over the class-frequency prior (:mod:`models.prior`: each fold's training labels'
shares predicted for its test rows, what a model with no edge scores), ``prior log loss -
log loss`` (out of sample, before the holdout), normalised to sum to 1; a member no better
than the prior gets 0, even when it beats the uniform guess (``ln 3``, the floor above the
prior). With no member better than the prior, equal weights: the blend then has no edge
either, and the promotion's prior gate refuses it. The ensemble's probabilities are the
weighted sum of the members'.

**Confidence** of a prediction, in [0, 1]: the members' agreement (the weight of the
members whose most probable label is the ensemble's) times the certainty of the blend
(``1 - entropy / ln 3``). Unanimous members with a sharp blend approach 1; split members
or a flat blend approach 0.

**One graph.** The members' ONNX graphs are joined into one (prefixed, fed by the one
``features`` input), with the weighted sum as ``probabilities``, its arg-max as
``label``, and the ``confidence`` computed in the graph too: one ONNX Runtime call per
batch gives both. ``bench/models.py`` measures it against one session per
member blended in numpy.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from models.base import DirectionModel, FoldResult, TrainingResult
from models.dataset import Dataset
from models.evaluation import log_loss
from models.lgbm import LightGBMDirectionModel
from models.xgb import XGBoostDirectionModel
from tickwave.errors import ConfigurationError
from tickwave.modeling import blend, ensemble_confidence

if TYPE_CHECKING:
    from onnx import ModelProto

__all__ = ["EnsembleClassifier", "EnsembleDirectionModel", "blend", "ensemble_confidence", "skill_weights"]

logger = logging.getLogger(__name__)

LN3 = math.log(3.0)


def skill_weights(log_losses: list[float], no_edge_log_loss: float = LN3) -> np.ndarray:
    """Return each member's weight: its skill ``no_edge_log_loss - log loss`` (at least 0), normalised.

    ``no_edge_log_loss``: what a model without edge scores on the same rows; the ensemble passes the
    class-frequency prior's (default: the uniform guess, ``ln 3``). Equal weights when no member has skill.
    """
    skill = np.maximum(0.0, no_edge_log_loss - np.asarray(log_losses, dtype=np.float64))
    if not skill.sum() > 0:
        return np.full(len(log_losses), 1.0 / len(log_losses))
    weights: np.ndarray = skill / skill.sum()
    return weights


@dataclass(frozen=True)
class EnsembleClassifier:
    """The trained members and their weights; ``predict_proba`` is the weighted vote."""

    frameworks: tuple[str, ...]
    models: tuple[Any, ...]
    weights: np.ndarray

    def member_probabilities(self, features: np.ndarray) -> np.ndarray:
        """Return members x rows x labels."""
        return np.stack([np.asarray(model.predict_proba(features), dtype=np.float64) for model in self.models])

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Return the weighted sum of the members' probabilities."""
        return blend(self.member_probabilities(features), self.weights)


class EnsembleDirectionModel(DirectionModel[EnsembleClassifier]):
    """XGBoost and LightGBM, trained through their own lifecycle and blended by walk-forward skill."""

    framework: ClassVar[str] = "ensemble"

    @cached_property
    def members(self) -> tuple[DirectionModel[Any], ...]:
        """XGBoost and LightGBM, with this ensemble's settings, rules, backtest sizes and clock."""
        return (
            XGBoostDirectionModel(self.settings, self.rules, self.backtest_settings, self.clock),
            LightGBMDirectionModel(self.settings, self.rules, self.backtest_settings, self.clock),
        )

    def fit(self, features: np.ndarray, labels: np.ndarray) -> EnsembleClassifier:
        """Fit every member on the rows, weighted equally (``train`` weighs them by walk-forward skill)."""
        models = tuple(member.fit(features, labels) for member in self.members)
        return EnsembleClassifier(
            tuple(member.framework for member in self.members), models, np.full(len(models), 1.0 / len(models))
        )

    def train(self, dataset: Dataset) -> TrainingResult[EnsembleClassifier]:
        """Train every member on ``dataset``; weigh them by walk-forward skill; score the blend the same way."""
        started = time.perf_counter()
        results = [member.train(dataset) for member in self.members]
        first = results[0]
        walk_forward_dataset = first.walk_forward_dataset
        assert walk_forward_dataset is not None and first.walk_forward_prior is not None  # set by DirectionModel.train
        # The members' out-of-sample rows and fold priors are the same: one "no edge" log loss for all of them.
        prior_loss = log_loss(walk_forward_dataset.labels, first.walk_forward_prior)
        weights = skill_weights([result.walk_forward.metrics.log_loss for result in results], prior_loss)
        out_of_sample = [result.walk_forward_probabilities for result in results]
        walk_forward = blend(np.stack([member for member in out_of_sample if member is not None]), weights)
        holdout = blend(np.stack([result.holdout_probabilities for result in results]), weights)
        folds, start = [], 0
        for fold in first.folds:  # the members' folds are the same rows, fold after fold
            rows = np.arange(start, start + fold.test_rows)
            evaluation = self.evaluate(walk_forward_dataset.take(rows), walk_forward[rows])
            folds.append(replace(fold, evaluation=evaluation))
            start += fold.test_rows
        importance: dict[str, float] = {}
        for weight, result in zip(weights, results, strict=True):
            total = sum(result.feature_importance.values()) or 1.0
            for name, value in result.feature_importance.items():
                importance[name] = importance.get(name, 0.0) + float(weight) * value / total
        params = {
            **self.params(),
            "members": ",".join(member.framework for member in self.members),
            **{
                f"weight_{member.framework}": f"{weight:.6f}"
                for member, weight in zip(self.members, weights, strict=True)
            },
            **{
                f"wf_log_loss_{member.framework}": f"{result.walk_forward.metrics.log_loss:.6f}"
                for member, result in zip(self.members, results, strict=True)
            },
        }
        logger.info(
            "ensemble weights %s", dict(zip(params["members"].split(","), weights.round(4).tolist(), strict=True))
        )
        model = EnsembleClassifier(
            tuple(member.framework for member in self.members), tuple(result.model for result in results), weights
        )
        return TrainingResult(
            model=model,
            dataset=dataset,
            holdout=first.holdout,
            holdout_probabilities=holdout,
            holdout_evaluation=self.evaluate(first.holdout, holdout),
            folds=list[FoldResult](folds),
            walk_forward=self.evaluate(walk_forward_dataset, walk_forward),
            feature_importance=importance,
            params=params,
            training_seconds=time.perf_counter() - started,
            development_rows=first.development_rows,
            walk_forward_dataset=walk_forward_dataset,
            walk_forward_probabilities=walk_forward,
            class_frequencies=first.class_frequencies,  # the members' training rows are the same
            walk_forward_prior=first.walk_forward_prior,
        )

    def to_onnx(self, model: EnsembleClassifier, width: int) -> ModelProto:
        """Convert each member through its own ``to_onnx`` and join the graphs (:func:`ensemble_onnx`).

        Raises:
            ConfigurationError: when ``model``'s members are not this ensemble's (by framework, in order).
        """
        frameworks = tuple(member.framework for member in self.members)
        if model.frameworks != frameworks:
            raise ConfigurationError(
                f"an ensemble of {', '.join(model.frameworks)} cannot export as one of {', '.join(frameworks)}"
            )
        graphs = [member.to_onnx(trained, width) for member, trained in zip(self.members, model.models, strict=True)]
        return ensemble_onnx(graphs, model.frameworks, model.weights, width)

    def onnx_metadata(self, model: EnsembleClassifier) -> dict[str, str]:
        """Return the members and their weights (``tickwave.members``), for the signal and the registry."""
        weights = [round(float(weight), 6) for weight in model.weights]
        return {
            "members": json.dumps([f"{name}:{weight}" for name, weight in zip(model.frameworks, weights, strict=True)])
        }


def ensemble_onnx(
    members: list[ModelProto], frameworks: tuple[str, ...], weights: np.ndarray, width: int
) -> ModelProto:
    """Join the members' ONNX graphs into one graph.

    ``features`` in; ``label``, ``probabilities`` (the weighted vote) and ``confidence``
    (rows x 1, :func:`tickwave.modeling.ensemble_confidence` in ONNX operators) out.
    """
    import onnx
    from onnx import TensorProto, compose, helper

    nodes: list[Any] = []
    initializers: list[Any] = []
    opsets: dict[str, int] = {}
    weighted, each = [], []
    for index, (member, weight) in enumerate(zip(members, weights, strict=True)):
        prefix = f"{frameworks[index]}_{index}_"
        graph = compose.add_prefix(member, prefix).graph
        nodes.append(helper.make_node("Identity", ["features"], [f"{prefix}features"]))
        nodes.extend(graph.node)
        initializers.extend(graph.initializer)
        initializers.append(helper.make_tensor(f"{prefix}weight", TensorProto.FLOAT, [], [float(weight)]))
        nodes.append(helper.make_node("Mul", [f"{prefix}probabilities", f"{prefix}weight"], [f"{prefix}weighted"]))
        weighted.append(f"{prefix}weighted")
        each.append(f"{prefix}probabilities")
        for opset in member.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    opsets[""] = max(opsets.get("", 0), 13)
    nodes.append(helper.make_node("Sum", weighted, ["probabilities"]))
    nodes.append(helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0))
    nodes.extend(
        _confidence_nodes(each, [f"{frameworks[index]}_{index}_weight" for index in range(len(members))], initializers)
    )
    labels = 3
    graph = helper.make_graph(
        nodes,
        "tickwave_ensemble",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, width])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, [None]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, labels]),
            helper.make_tensor_value_info("confidence", TensorProto.FLOAT, [None, 1]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid(domain, version) for domain, version in sorted(opsets.items())]
    )
    model.ir_version = max(member.ir_version for member in members)
    onnx.checker.check_model(model)
    return model


def _confidence_nodes(each: list[str], weights: list[str], initializers: list[Any]) -> list[Any]:
    # ``confidence`` (rows x 1) = weighted agreement with the blend's label x (1 - entropy / ln 3), as
    # tickwave.modeling.ensemble_confidence computes it, inside the graph: numpy's per-call cost on one
    # row (~60 us under load) would exceed the members' own.
    from onnx import TensorProto, helper

    initializers.extend(
        [
            helper.make_tensor("confidence_floor", TensorProto.FLOAT, [], [1e-12]),
            helper.make_tensor("confidence_one", TensorProto.FLOAT, [], [1.0]),
            helper.make_tensor("confidence_zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("confidence_inverse_ln3", TensorProto.FLOAT, [], [1.0 / LN3]),
            helper.make_tensor("confidence_axes", TensorProto.INT64, [1], [1]),
        ]
    )
    nodes = [helper.make_node("ArgMax", ["probabilities"], ["blend_label"], axis=1, keepdims=1)]
    votes = []
    for index, (member, weight) in enumerate(zip(each, weights, strict=True)):
        nodes += [
            helper.make_node("ArgMax", [member], [f"vote_{index}_label"], axis=1, keepdims=1),
            helper.make_node("Equal", [f"vote_{index}_label", "blend_label"], [f"vote_{index}_agrees"]),
            helper.make_node("Cast", [f"vote_{index}_agrees"], [f"vote_{index}_float"], to=TensorProto.FLOAT),
            helper.make_node("Mul", [f"vote_{index}_float", weight], [f"vote_{index}"]),
        ]
        votes.append(f"vote_{index}")
    return [
        *nodes,
        helper.make_node("Sum", votes, ["agreement"]),
        helper.make_node("Clip", ["probabilities", "confidence_floor", "confidence_one"], ["clipped"]),
        helper.make_node("Log", ["clipped"], ["log_probabilities"]),
        helper.make_node("Mul", ["probabilities", "log_probabilities"], ["p_log_p"]),
        helper.make_node("ReduceSum", ["p_log_p", "confidence_axes"], ["minus_entropy"], keepdims=1),
        helper.make_node("Mul", ["minus_entropy", "confidence_inverse_ln3"], ["minus_scaled_entropy"]),
        helper.make_node("Add", ["confidence_one", "minus_scaled_entropy"], ["raw_certainty"]),
        helper.make_node("Clip", ["raw_certainty", "confidence_zero", "confidence_one"], ["certainty"]),
        helper.make_node("Mul", ["agreement", "certainty"], ["confidence"]),
    ]
