"""ONNX export with a parity check, and the metadata written beside every artifact.

The export converts the trained classifier with onnxmltools (input ``features``:
float32, rows x features; outputs ``label`` and ``probabilities``) and embeds the
feature names, schema hash and labels in the ONNX metadata, so an artifact describes
itself; the same trained model always exports to the same bytes (so the same SHA-256).
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
from typing import Any

import numpy as np

from models.errors import ParityError
from models.serving import ServingModel
from tickwave.errors import ConfigurationError
from tickwave.modeling import META_FEATURE_NAMES, META_LABELS, META_SCHEMA_HASH, ModelArtifact

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


def to_onnx(
    model: Any,
    feature_names: Sequence[str],
    schema_hash: str,
    labels: Sequence[str],
    extra: Mapping[str, str] | None = None,
) -> bytes:
    """Convert a trained classifier to ONNX bytes with Tickwave's metadata embedded.

    ``extra`` adds more ``tickwave.*`` metadata (the timeframe and label the model was
    trained for), so a consumer can check more than the feature schema.

    Raises:
        ConfigurationError: for a classifier onnxmltools cannot convert here.
    """
    onnx_model = _convert(model, len(feature_names))
    onnx_model.graph.name = "tickwave_direction"  # the converter names it with a random UUID; keep the bytes stable
    members = getattr(model, "frameworks", ())
    if members:  # an ensemble: its members and weights, for the signal and the registry
        weights = [round(float(weight), 6) for weight in model.weights]
        extra = {
            **(extra or {}),
            "members": json.dumps([f"{name}:{weight}" for name, weight in zip(members, weights, strict=True)]),
        }
    for key, value in (
        (META_FEATURE_NAMES, json.dumps(list(feature_names))),
        (META_SCHEMA_HASH, schema_hash),
        (META_LABELS, json.dumps(list(labels))),
        *((f"tickwave.{key}", value) for key, value in (extra or {}).items()),
    ):
        prop = onnx_model.metadata_props.add()
        prop.key, prop.value = key, value
    return bytes(onnx_model.SerializeToString())


def _convert(model: Any, width: int) -> Any:
    # The classifier's ONNX graph: input ``features`` (float32, rows x width), outputs label and probabilities.
    import lightgbm as lgb
    import xgboost as xgb
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    from models.ensemble import EnsembleClassifier, ensemble_onnx

    inputs = [("features", FloatTensorType([None, width]))]
    if isinstance(model, EnsembleClassifier):
        members = [_convert(member, width) for member in model.models]
        return ensemble_onnx(members, model.frameworks, model.weights, width)
    if isinstance(model, xgb.XGBClassifier):
        return convert_xgboost(model, initial_types=inputs)
    if isinstance(model, lgb.LGBMClassifier):
        return convert_lightgbm(model, initial_types=inputs, zipmap=False)  # probabilities as a tensor, like XGBoost's
    raise ConfigurationError(
        f"no ONNX converter for {type(model).__name__}: XGBClassifier and LGBMClassifier are exported"
    )


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
