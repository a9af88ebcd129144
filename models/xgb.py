"""The XGBoost direction classifier: the lifecycle is the base class's, this fits and converts to ONNX."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import xgboost as xgb

from models.base import DirectionModel
from models.export import onnx_inputs

if TYPE_CHECKING:
    from onnx import ModelProto


class XGBoostDirectionModel(DirectionModel[xgb.XGBClassifier]):
    """A multi-class (``multi:softprob``) gradient-boosted tree classifier from ``xgboost-cpu``."""

    framework = "xgboost"

    def fit(self, features: np.ndarray, labels: np.ndarray) -> xgb.XGBClassifier:
        """Fit with the ``models`` hyper-parameters (histogram trees, fixed seed)."""
        settings = self.settings
        model = xgb.XGBClassifier(
            objective="multi:softprob",
            n_estimators=settings.n_estimators,
            max_depth=settings.max_depth,
            learning_rate=settings.learning_rate,
            subsample=settings.subsample,
            colsample_bytree=settings.colsample_bytree,
            min_child_weight=settings.min_child_weight,
            reg_lambda=settings.reg_lambda,
            n_jobs=settings.n_jobs,
            random_state=settings.seed,
            tree_method="hist",
            eval_metric="mlogloss",
        )
        model.fit(features, labels)
        return model

    def to_onnx(self, model: xgb.XGBClassifier, width: int) -> ModelProto:
        """Convert with onnxmltools' XGBoost converter (probabilities as a tensor)."""
        from onnxmltools import convert_xgboost

        onnx_model: ModelProto = convert_xgboost(model, initial_types=onnx_inputs(width))
        return onnx_model
