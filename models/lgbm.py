"""The LightGBM direction classifier: the lifecycle is the base class's, this fits and converts to ONNX."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightgbm as lgb
import numpy as np

from models.base import DirectionModel
from models.export import onnx_inputs

if TYPE_CHECKING:
    from onnx import ModelProto


class LightGBMDirectionModel(DirectionModel[lgb.LGBMClassifier]):
    """A multi-class gradient-boosted tree classifier from LightGBM, sized like the XGBoost one.

    The ``models`` hyper-parameters map one to one (rounds, depth, shrinkage, row and
    feature sampling, L2, smallest hessian sum in a leaf, threads, seed); leaves are
    capped at ``2 ** max_depth`` so a tree is no larger than XGBoost's of the same depth.
    ``deterministic`` with one seed makes a refit give the same trees (the same ONNX bytes).
    The fitted thresholds are made float32-exact (:func:`float32_safe_thresholds`), so the
    ONNX export decides every split as the trained model does.
    """

    framework = "lightgbm"

    def fit(self, features: np.ndarray, labels: np.ndarray) -> lgb.LGBMClassifier:
        """Fit with the ``models`` hyper-parameters (fixed seed, deterministic, quiet)."""
        settings = self.settings
        model = lgb.LGBMClassifier(
            objective="multiclass",
            n_estimators=settings.n_estimators,
            max_depth=settings.max_depth,
            num_leaves=2**settings.max_depth,
            learning_rate=settings.learning_rate,
            subsample=settings.subsample,
            subsample_freq=1 if settings.subsample < 1 else 0,
            colsample_bytree=settings.colsample_bytree,
            min_child_weight=settings.min_child_weight,
            min_child_samples=1,
            reg_lambda=settings.reg_lambda,
            n_jobs=settings.n_jobs,
            random_state=settings.seed,
            deterministic=True,
            force_row_wise=True,
            verbose=-1,
        )
        model.fit(features, labels)
        model._Booster = float32_safe_thresholds(model.booster_)
        return model

    def to_onnx(self, model: lgb.LGBMClassifier, width: int) -> ModelProto:
        """Convert with onnxmltools' LightGBM converter (probabilities as a tensor, like XGBoost's: no zipmap)."""
        from onnxmltools import convert_lightgbm

        onnx_model: ModelProto = convert_lightgbm(model, initial_types=onnx_inputs(width), zipmap=False)
        return onnx_model


def float32_safe_thresholds(booster: lgb.Booster) -> lgb.Booster:
    """Return ``booster`` with each split threshold lowered to the largest float32 at or below it.

    LightGBM keeps thresholds in double (midpoints between two feature values); ONNX's tree
    ensemble compares in float32, where the midpoint rounds to the nearest float32, which
    may be the upper value itself, so that value goes left in ONNX and right in LightGBM
    (seen: probabilities 0.005 apart, a failed parity check). For a float32 input ``x``,
    ``x <= t`` holds exactly when ``x <= t32`` with ``t32`` the largest float32 not above
    ``t``: the model predicts the same on float32 features, and its export matches it.
    """
    # Without ``tree_sizes`` (byte counts the new numbers would falsify), LightGBM reads the trees one by one.
    lines = [line for line in booster.model_to_string().splitlines() if not line.startswith("tree_sizes=")]
    for index, line in enumerate(lines):
        if line.startswith("threshold="):
            exact = np.array(line.removeprefix("threshold=").split(), dtype=np.float64)
            single = exact.astype(np.float32)
            single = np.where(single.astype(np.float64) > exact, np.nextafter(single, np.float32(-np.inf)), single)
            lines[index] = "threshold=" + " ".join(repr(float(value)) for value in single)
    return lgb.Booster(model_str="\n".join(lines) + "\n")
