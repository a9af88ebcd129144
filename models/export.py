"""ONNX export with a parity check, and the metadata written beside every artifact.

Each model converts itself (``DirectionModel.to_onnx``: input ``features``, float32, rows
x features; outputs ``label`` and ``probabilities``); this embeds the feature names,
schema hash and labels in the ONNX metadata, so an artifact describes itself; the same
trained model always exports to the same bytes (so the same SHA-256).
The parity check runs the exported model through the same ``ServingModel`` the
streams use and compares its probabilities on the holdout with the trained model's
own: a difference above the tolerance raises ``ParityError`` and the model is not
registered.
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from models.errors import ParityError
from models.serving import ServingModel
from tickwave.modeling import META_FEATURE_NAMES, META_LABELS, META_SCHEMA_HASH, ModelArtifact

if TYPE_CHECKING:
    from onnx import ModelProto

_LIBRARIES = (
    "tickwave",
    "xgboost-cpu",
    "lightgbm",
    "onnx",
    "onnxmltools",
    "onnxruntime",
    "scikit-learn",
    "numpy",
    "pandas",
)


def embed_metadata(
    onnx_model: ModelProto,
    feature_names: Sequence[str],
    schema_hash: str,
    labels: Sequence[str],
    extra: Mapping[str, str] | None = None,
) -> bytes:
    """Return ``onnx_model`` as bytes with Tickwave's metadata embedded (``tickwave.*`` keys).

    The feature names, schema hash and labels, then ``extra`` (the timeframe and label the
    model was trained for, an ensemble's members), so a consumer can check more than the
    feature schema. The graph is renamed ``tickwave_direction``: converters name it with a
    random UUID, and the same trained model must give the same bytes.
    """
    onnx_model.graph.name = "tickwave_direction"
    for key, value in (
        (META_FEATURE_NAMES, json.dumps(list(feature_names))),
        (META_SCHEMA_HASH, schema_hash),
        (META_LABELS, json.dumps(list(labels))),
        *((f"tickwave.{key}", value) for key, value in (extra or {}).items()),
    ):
        prop = onnx_model.metadata_props.add()
        prop.key, prop.value = key, value
    return bytes(onnx_model.SerializeToString())


def onnx_inputs(width: int) -> list[tuple[str, Any]]:
    """Return the converters' input declaration: ``features``, float32, rows x ``width``."""
    # onnxmltools loads every converter it has (~1 s): only an export pays for it.
    from onnxmltools.convert.common.data_types import FloatTensorType

    return [("features", FloatTensorType([None, width]))]


def parity_check(
    native_probabilities: np.ndarray, artifact: ModelArtifact, features: np.ndarray, tolerance: float
) -> float:
    """Return the largest |ONNX - native| probability over ``features``.

    Raises:
        ParityError: when it exceeds ``tolerance``, or the shapes differ.
    """
    exported = ServingModel(artifact).predict_batch(features).astype(np.float64)
    native = np.asarray(native_probabilities, dtype=np.float64)
    if exported.shape != native.shape:
        raise ParityError(f"ONNX output shape {exported.shape} differs from the trained model's {native.shape}")
    difference = float(np.max(np.abs(exported - native))) if len(native) else 0.0
    if not difference <= tolerance:
        raise ParityError(
            f"the ONNX export differs from the trained model by up to {difference:.3g} on the holdout "
            f"(tolerance {tolerance:g}, models.parity_tolerance): not registered; check the converter versions"
        )
    return difference


def library_versions() -> dict[str, str]:
    """Return the versions of Python and the libraries that trained and exported the model."""
    versions = {"python": platform.python_version(), "platform": sys.platform}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions
