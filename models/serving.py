"""Serve a registered model: load the ONNX artifact once, check its feature schema, predict rows.

A ``ServingModel`` refuses an artifact of another feature schema than the caller's
(``SchemaMismatchError``), or whose input width differs from its feature names, at load
time rather than on the first prediction. It predicts one row (a mapping by feature
name, or values in model order) or a batch, with one ONNX Runtime thread by default:
single rows are the streams' case, where a session per worker is fastest.

The registry's artifacts carry their own description in the ONNX metadata
(``feature_names``, ``schema_hash``, ``labels``, ``timeframe``, ``symbols``), so
:func:`tickwave.modeling.artifact_from_onnx` rebuilds the ``ModelArtifact`` the streams
need from the bytes alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from models.errors import SchemaMismatchError
from streams.inference import LoadedModel
from tickwave.modeling import ModelArtifact, artifact_from_onnx

__all__ = ["ServingModel", "artifact_from_onnx"]


class ServingModel(LoadedModel):
    """The streams' ONNX session with the registry's checks: feature schema and input width."""

    def __init__(self, artifact: ModelArtifact, expected_schema_hash: str | None = None, threads: int = 1) -> None:
        """Load ``artifact`` once.

        Args:
            artifact: the model and its description.
            expected_schema_hash: the caller's feature schema; a different one is refused.
            threads: ONNX Runtime intra-op threads (1 for single rows).

        Raises:
            SchemaMismatchError: another feature schema, or an input width that differs
                from the number of feature names.
        """
        name = f"{artifact.model_id} v{artifact.model_version}"
        if expected_schema_hash is not None and artifact.schema_hash != expected_schema_hash:
            raise SchemaMismatchError(
                f"{name} was trained on feature schema {artifact.schema_hash}, these features are "
                f"{expected_schema_hash}: retrain on the current features, or serve the matching feature set"
            )
        super().__init__(artifact, threads)
        model_input = self.session.get_inputs()[0]
        width = model_input.shape[-1] if model_input.shape else None
        if isinstance(width, int) and width != len(artifact.feature_names):
            raise SchemaMismatchError(f"{name} takes {width} features but names {len(artifact.feature_names)}")

    def predict_row(self, values: Mapping[str, float] | Sequence[float] | np.ndarray) -> dict[str, float]:
        """Return ``{label: probability}`` for one row: a mapping by feature name, or values in model order.

        Raises:
            SchemaMismatchError: a mapping that lacks some of the model's features.
        """
        if isinstance(values, Mapping):
            missing = [name for name in self.artifact.feature_names if name not in values]
            if missing:
                raise SchemaMismatchError(f"row lacks features {', '.join(missing)}")
            row = np.array([[values[name] for name in self.artifact.feature_names]], dtype=np.float32)
        else:
            row = np.asarray(values, dtype=np.float32).reshape(1, -1)
        return self.predict(row)
