"""What the model registry, the trainer and the dataflow share: the servable artifact and the signal rules.

The trainer (``models/``) produces artifacts, the dataflow (``streams/``) serves them:
both speak these definitions, so neither imports the other (``models/`` may import the
streams' feature code, the one place features are computed; ``streams/`` imports no
component).

An artifact describes itself in its ONNX metadata (``tickwave.feature_names``,
``tickwave.schema_hash``, ``tickwave.labels``, ``tickwave.timeframe``,
``tickwave.symbols``), so :func:`artifact_from_onnx` rebuilds it from the bytes alone. A
model learned one timeframe and a set of symbols: it is served only on feature vectors
of that timeframe and those symbols.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tickwave.errors import ConfigurationError

META_FEATURE_NAMES = "tickwave.feature_names"
META_SCHEMA_HASH = "tickwave.schema_hash"
META_LABELS = "tickwave.labels"
META_TIMEFRAME = "tickwave.timeframe"
META_SYMBOLS = "tickwave.symbols"
META_MEMBERS = "tickwave.members"

# The role a served model plays (a registry stage): the champion of a ``(slot, timeframe)`` slot
# trades; its challengers (of its model id or another) are scored in shadow on the same vectors
# and never trade. A slot is named by a model id: the version's own, or the one whose champion
# it was shadowed against.
CHAMPION, CHALLENGER = "champion", "challenger"


class ArtifactMetadataError(ConfigurationError):
    """An ONNX model lacks the metadata that says what it was trained on (retrain or re-export it)."""


def serving_key(model_id: str, timeframe: str, role: str, model_version: int, slot: str = "") -> tuple[str, ...]:
    """Where a served model is kept: its champion slot, or the slot, model id and version of a challenger.

    A slot ``(slot, timeframe)`` (``slot`` defaults to ``model_id``) has one champion but
    may have several challengers, of its model id or of others.
    """
    key = (slot or model_id, timeframe)
    return key if role == CHAMPION else (*key, f"{CHALLENGER}:{model_id} v{model_version}")


@dataclass(frozen=True)
class ModelArtifact:
    """What the flow needs to serve a model, and where it applies (``timeframe``, ``symbols``)."""

    model_id: str
    model_version: int
    onnx_bytes: bytes
    feature_names: tuple[str, ...]
    schema_hash: str
    labels: tuple[str, ...]  # class index -> label, e.g. ("down", "flat", "up")
    timeframe: str = ""  # the bars it learned; "" = undeclared (never served)
    symbols: tuple[str, ...] = ()  # the symbols it learned; () = undeclared (never served)
    members: tuple[str, ...] = ()  # an ensemble's members, "framework:weight"; () for a single model
    role: str = CHAMPION  # CHALLENGER: scored in shadow, its predictions stored, never turned into signals
    slot: str = ""  # the model id naming the slot it serves or challenges; "" = its own

    @property
    def name(self) -> str:
        """``model_id vN``."""
        return f"{self.model_id} v{self.model_version}"

    @property
    def key(self) -> tuple[str, str]:
        """The champion slot this artifact fills or challenges: one champion per ``(slot, timeframe)``."""
        return (self.slot or self.model_id, self.timeframe)

    @property
    def serving_key(self) -> tuple[str, ...]:
        """Where the flow keeps this model (:func:`serving_key`)."""
        return serving_key(self.model_id, self.timeframe, self.role, self.model_version, self.slot)

    def serves(self, symbol: str, timeframe: str) -> bool:
        """Return True when this model was trained for ``symbol`` on ``timeframe`` bars."""
        return timeframe == self.timeframe and symbol in self.symbols


class ModelProvider(Protocol):
    """Tells the flow which models to serve now (the registry, in production)."""

    def champions(self) -> Sequence[ModelArtifact]:
        """Return the current champions, at most one per ``(slot, timeframe)``, and their challengers.

        A challenger's artifact has ``role == CHALLENGER``: the flow scores it in shadow.
        """


@dataclass(frozen=True)
class SignalRules:
    """Thresholds that turn probabilities into a direction (the streams' and the backtest's)."""

    entry_probability: float = 0.55
    min_edge: float = 0.10


def artifact_from_onnx(model_id: str, model_version: int, onnx_bytes: bytes) -> ModelArtifact:
    """Return the artifact described by the metadata embedded in ``onnx_bytes``.

    Raises:
        ArtifactMetadataError: when the model does not carry Tickwave's feature metadata.
    """
    import onnx

    properties = {prop.key: prop.value for prop in onnx.load_from_string(onnx_bytes).metadata_props}
    missing = [key for key in (META_FEATURE_NAMES, META_SCHEMA_HASH, META_LABELS) if key not in properties]
    if missing:
        raise ArtifactMetadataError(f"{model_id} v{model_version}: the ONNX model lacks metadata {', '.join(missing)}")
    return ModelArtifact(
        model_id=model_id,
        model_version=model_version,
        onnx_bytes=onnx_bytes,
        feature_names=tuple(json.loads(properties[META_FEATURE_NAMES])),
        schema_hash=properties[META_SCHEMA_HASH],
        labels=tuple(json.loads(properties[META_LABELS])),
        timeframe=properties.get(META_TIMEFRAME, ""),
        symbols=tuple(json.loads(properties.get(META_SYMBOLS, "[]"))),
        members=tuple(json.loads(properties.get(META_MEMBERS, "[]"))),
    )


def blend(member_probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return the weighted sum over members of ``member_probabilities`` (members x rows x labels)."""
    blended: np.ndarray = np.tensordot(weights, member_probabilities, axes=1)
    return blended


def ensemble_confidence(member_probabilities: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Return each row's confidence: the members' weighted agreement times the blend's certainty (1 - entropy/ln 3).

    Args:
        member_probabilities: members x rows x labels.
        weights: one per member, summing to 1.
    """
    blended = blend(member_probabilities, weights)
    agrees = member_probabilities.argmax(axis=2) == blended.argmax(axis=1)[None, :]
    agreement = np.tensordot(weights, agrees.astype(np.float64), axes=1)
    clipped = np.clip(blended, 1e-12, 1.0)
    entropy = -(blended * np.log(clipped)).sum(axis=1)
    certainty = np.clip(1.0 - entropy / math.log(blended.shape[1]), 0.0, 1.0)
    result: np.ndarray = np.clip(agreement * certainty, 0.0, 1.0)
    return result
