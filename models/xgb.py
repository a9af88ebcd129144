"""The XGBoost direction classifier: the lifecycle is the base class's, this only fits."""

from __future__ import annotations

import numpy as np
import xgboost as xgb

from models.base import DirectionModel


class XGBoostDirectionModel(DirectionModel):
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
