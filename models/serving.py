"""Serve a registered model: load the ONNX artifact once, check its feature schema, predict rows.

A ``ServingModel`` refuses an artifact of another feature schema than the caller's
(``SchemaMismatchError``), or whose input width differs from its feature names, at load
time rather than on the first prediction. It predicts one row (a mapping by feature
name, or values in model order) or a batch, with one ONNX Runtime thread by default:
single rows are the streams' case, where a session per worker is fastest.

The registry's artifacts carry their own description in the ONNX metadata
(``feature_names``, ``schema_hash``, ``labels``), so :func:`artifact_from_onnx` rebuilds
the ``ModelArtifact`` the streams need from the bytes alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from models.errors import SchemaMismatchError
from streams.inference import ModelArtifact

META_FEATURE_NAMES = "tickwave.feature_names"
META_SCHEMA_HASH = "tickwave.schema_hash"
META_LABELS = "tickwave.labels"


def artifact_from_onnx(model_id: str, model_version: int, onnx_bytes: bytes) -> ModelArtifact:
    """Return the artifact described by the metadata embedded in ``onnx_bytes``.

    Raises:
        SchemaMismatchError: when the model does not carry Tickwave's metadata.
    """
    properties = {prop.key: prop.value for prop in onnx.load_from_string(onnx_bytes).metadata_props}
    missing = [key for key in (META_FEATURE_NAMES, META_SCHEMA_HASH, META_LABELS) if key not in properties]
    if missing:
        raise SchemaMismatchError(f"{model_id} v{model_version}: the ONNX model lacks metadata {', '.join(missing)}")
    return ModelArtifact(
        model_id=model_id,
        model_version=model_version,
        onnx_bytes=onnx_bytes,
        feature_names=tuple(json.loads(properties[META_FEATURE_NAMES])),
        schema_hash=properties[META_SCHEMA_HASH],
        labels=tuple(json.loads(properties[META_LABELS])),
    )


class ServingModel:
    """One ONNX Runtime session for one artifact; predicts rows in the artifact's feature order."""

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
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.artifact = artifact
        self.session = ort.InferenceSession(artifact.onnx_bytes, options, providers=["CPUExecutionProvider"])
        model_input = self.session.get_inputs()[0]
        self.input_name = model_input.name
        width = model_input.shape[-1] if model_input.shape else None
        if isinstance(width, int) and width != len(artifact.feature_names):
            raise SchemaMismatchError(f"{name} takes {width} features but names {len(artifact.feature_names)}")
        outputs = [output.name for output in self.session.get_outputs()]
        self.output_name = next((output for output in outputs if "prob" in output.lower()), outputs[-1])
        self._index = {feature: position for position, feature in enumerate(artifact.feature_names)}

    def predict_batch(self, features: np.ndarray) -> np.ndarray:
        """Return class probabilities (rows x labels, float32) for a feature matrix in model order."""
        result = self.session.run([self.output_name], {self.input_name: np.asarray(features, dtype=np.float32)})[0]
        if isinstance(result, list):  # a ZipMap output: one {class index: probability} per row
            return np.array([[row[index] for index in range(len(self.artifact.labels))] for row in result],
                            dtype=np.float32)  # fmt: skip
        return np.asarray(result, dtype=np.float32)

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
        probabilities = self.predict_batch(row)[0]
        # float32 rounding can put a probability a hair outside [0, 1].
        labels = self.artifact.labels
        return {label: min(1.0, max(0.0, float(p))) for label, p in zip(labels, probabilities, strict=True)}
