"""Model inference inside the dataflow: one ONNX Runtime session per worker, hot-swapped.

A ``ModelProvider`` (``tickwave.modeling``) says which models are champions now (at most
one per slot ``(slot, timeframe)``, the slot named by a model id) and which challengers
(of any model id) are scored beside them in shadow. ``Inference`` asks it every
``refresh_s`` seconds from a thread of its own (never in the flow's step, after the first
prediction) and, when the answer changes,
loads the new models without stopping the flow. Each champion scores only the vectors of
the timeframe and symbols it was trained on. A model whose feature schema hash differs
from the flow's feature set, or that does not declare its timeframe and symbols, is
refused (logged once) and the flow keeps the previous one. With no model, the flow emits
features only and logs that once. A challenger's predictions carry
``role="challenger"``: the flow stores them and never turns them into signals.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from tickwave.clock import Clock
from tickwave.contracts import FeatureVector, Prediction
from tickwave.modeling import CHAMPION, ModelArtifact, ModelProvider

logger = logging.getLogger(__name__)


class LoadedModel:
    """An ONNX Runtime session for one artifact, single-threaded by default (one per worker)."""

    def __init__(self, artifact: ModelArtifact, threads: int = 1) -> None:
        """Create the session (``threads``: ONNX Runtime intra-op threads; 1 for single rows)."""
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.artifact = artifact
        self.session = ort.InferenceSession(artifact.onnx_bytes, options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        outputs = [output.name for output in self.session.get_outputs()]
        self.output_name = next((name for name in outputs if "prob" in name.lower()), outputs[-1])
        # An ensemble's graph also gives its confidence score (rows x 1), from the same call.
        self.confidence_name = "confidence" if "confidence" in outputs else None

    def predict_batch(self, features: np.ndarray) -> np.ndarray:
        """Return class probabilities (rows x labels, float32) for a feature matrix in model order."""
        result = self.session.run([self.output_name], {self.input_name: np.asarray(features, dtype=np.float32)})[0]
        if isinstance(result, list):  # a ZipMap output: one {class index: probability} per row
            return np.array(
                [[row[index] for index in range(len(self.artifact.labels))] for row in result], dtype=np.float32
            )
        return np.asarray(result, dtype=np.float32)

    def predict_with_confidence(self, rows: np.ndarray) -> tuple[list[dict[str, float]], list[float] | None]:
        """Return each row's label probabilities and, for an ensemble, its confidence score (else None), in one call."""
        if self.confidence_name is None:
            return self.predict_rows(rows), None
        blended, scores = self.session.run(
            [self.output_name, self.confidence_name], {self.input_name: np.asarray(rows, dtype=np.float32)}
        )
        labels = self.artifact.labels
        probabilities = [
            {label: min(1.0, max(0.0, p)) for label, p in zip(labels, row, strict=True)} for row in blended.tolist()
        ]
        return probabilities, [min(1.0, max(0.0, score[0])) for score in scores.tolist()]

    def predict(self, row: np.ndarray) -> dict[str, float]:
        """Return the label probabilities for one row of features in model order."""
        return self.predict_rows(row)[0]

    def predict_rows(self, rows: np.ndarray) -> list[dict[str, float]]:
        """Return the label probabilities of each row of a feature matrix in model order, in one call."""
        labels = self.artifact.labels
        # float32 rounding can put a probability a hair outside [0, 1].
        return [
            {label: min(1.0, max(0.0, p)) for label, p in zip(labels, row, strict=True)}
            for row in self.predict_batch(rows).tolist()
        ]


class Inference:
    """Predicts for warm feature vectors with the champions, each on its own timeframe and symbols.

    There is at most one champion per slot ``(slot, timeframe)``; a vector is scored only
    by the champions trained on its timeframe and symbol (a model trained on 1-minute
    bars never scores 1-second ones). An artifact that does not declare its timeframe
    and symbols is refused, like one of another feature schema (logged once).

    The champions are looked up off the hot path. The first prediction asks the provider
    itself, so a flow serves from its first closed bar; from then on a watcher thread
    asks every ``refresh_s`` seconds, ``settle_s`` after a prediction (so its lookup falls
    between two bursts of bar closes, not in one), and swaps new models in once their
    sessions are built. The registry's lookup is a warehouse query: ~8 ms of wall time and
    ~2 ms of CPU each (measured on the embedded warehouse), which in the flow's thread
    delayed every signal of that second. A lookup or a model that fails is logged and the
    previous model of that slot keeps serving.
    """

    def __init__(
        self,
        provider: ModelProvider | None,
        schema_hash: str,
        clock: Clock,
        refresh_s: float = 5.0,
        settle_s: float = 0.1,
    ) -> None:
        """Serve models of the feature set ``schema_hash`` from ``provider`` (``clock`` stamps the predictions)."""
        self.provider = provider
        self.schema_hash = schema_hash
        self.refresh_s = refresh_s
        self.settle_s = settle_s
        self.clock = clock
        # (slot, timeframe) -> the champion's session, (slot, timeframe, "challenger:<model_id> vN") -> a
        # challenger's; swapped whole.
        self.models: dict[tuple[str, ...], LoadedModel] = {}
        self._rejected: set[tuple[str, int]] = set()  # refused or unloadable: logged once, never tried again
        self._said_no_model = False
        self._predicted = threading.Event()  # set by each prediction; the watcher looks up after one
        self._watcher: threading.Thread | None = None

    @property
    def model(self) -> LoadedModel | None:
        """The only champion, when there is exactly one (None otherwise)."""
        models = [model for model in self.models.values() if model.artifact.role == CHAMPION]
        return models[0] if len(models) == 1 else None

    def _refusal(self, artifact: ModelArtifact) -> str | None:
        # Why an artifact may not serve in this flow, or None.
        if artifact.schema_hash != self.schema_hash:
            return f"feature schema {artifact.schema_hash} != flow's {self.schema_hash}"
        if not artifact.timeframe or not artifact.symbols:
            return "the artifact does not declare its timeframe and symbols (retrain it)"
        return None

    def refresh(self) -> None:
        """Ask the provider for the champions once; build and swap in the new ones (the watcher's call)."""
        artifacts = list(self.provider.champions()) if self.provider else []
        if not artifacts:
            if not self._said_no_model and not self.models:
                logger.info("no champion model: emitting features only")
                self._said_no_model = True
            return
        models: dict[tuple[str, ...], LoadedModel] = {}
        for artifact in artifacts:
            key = (artifact.model_id, artifact.model_version)
            slot = artifact.serving_key
            current = self.models.get(slot)
            if current is not None and (current.artifact.model_id, current.artifact.model_version) == key:
                models[slot] = current
                continue
            if key not in self._rejected:
                refusal = self._refusal(artifact)
                if refusal is None:
                    try:
                        models[slot] = LoadedModel(artifact)
                        logger.info(
                            "model=%s version=%d timeframe=%s symbols=%s loaded as %s",
                            artifact.model_id,
                            artifact.model_version,
                            artifact.timeframe,
                            ",".join(artifact.symbols),
                            artifact.role,
                        )
                        continue
                    except Exception:  # a broken artifact must not stop the flow: the previous model keeps serving
                        logger.exception("model=%s version=%d could not be loaded; keeping the model before", *key)
                else:
                    logger.error("model=%s version=%d refused: %s", *key, refusal)
                self._rejected.add(key)
            if current is not None:
                models[slot] = current
        self.models = models
        self._said_no_model = False

    def _start_watcher(self) -> None:
        self._watcher = threading.Thread(
            target=_watch, args=(weakref.ref(self), self.refresh_s, self.settle_s), name="champion-watcher", daemon=True
        )
        self._watcher.start()

    def predict(self, features: FeatureVector) -> Prediction | None:
        """Return the first champion's prediction for a warm vector, or None (cold, or no model serves it)."""
        predictions = self.predict_many((features,))
        return predictions[0] if predictions else None

    def predict_many(self, vectors: Sequence[FeatureVector], role: str = CHAMPION) -> list[Prediction]:
        """Return the predictions of the warm vectors among ``vectors`` by the models of ``role``: one call per model.

        ``role``: ``"champion"`` (the default: the predictions signals are made of) or
        ``"challenger"`` (the shadow scores, asked for after the champions' signals are sent).
        Each model scores only the vectors of its timeframe and symbols. The symbols
        whose bars close together are predicted in one ONNX Runtime call: ten rows of a
        default-size model (300 rounds x 3 classes) took 89 us in one call and 10 x 37 us
        one by one. Each prediction's ``inference_latency_us`` is its call's.
        """
        if self._watcher is None:
            self.refresh()
            self._start_watcher()
        if not self._predicted.is_set():
            self._predicted.set()
        models = self.models  # one read: the watcher may swap in others meanwhile
        warm = [vector for vector in vectors if vector.is_warm]
        if not models or not warm:
            return []
        predictions = []
        for model in models.values():
            artifact = model.artifact
            if artifact.role != role:
                continue
            mine = [vector for vector in warm if artifact.serves(vector.symbol, vector.timeframe)]
            if not mine:
                continue
            names = artifact.feature_names
            started = time.perf_counter_ns()
            rows = np.array([[vector.values[name] for name in names] for vector in mine], dtype=np.float32)
            probabilities, confidences = model.predict_with_confidence(rows)
            latency_us = (time.perf_counter_ns() - started) / 1000
            now_ms = self.clock.now_ms()
            for index, (vector, row) in enumerate(zip(mine, probabilities, strict=True)):
                predictions.append(
                    Prediction(
                        symbol=vector.symbol,
                        timeframe=vector.timeframe,
                        bar_start_ms=vector.bar_start_ms,
                        model_id=artifact.model_id,
                        model_version=artifact.model_version,
                        probabilities=row,
                        inference_latency_us=latency_us,
                        predicted_at_ms=now_ms,
                        confidence=None if confidences is None else confidences[index],
                        members=artifact.members,
                        role=artifact.role,
                    )
                )
        return predictions


def _watch(inference_ref: weakref.ref[Inference], refresh_s: float, settle_s: float) -> None:
    """Look up the champion every ``refresh_s``, ``settle_s`` after a prediction; end with the ``Inference``."""
    while True:
        time.sleep(refresh_s)
        inference = inference_ref()
        if inference is None:
            return
        predicted = inference._predicted
        del inference  # no strong reference while waiting: the flow's end collects it and ends this thread
        predicted.clear()
        # After the next prediction, wait out its burst; with none for an interval (no bars close), look up now.
        if predicted.wait(refresh_s):
            time.sleep(settle_s)
        inference = inference_ref()
        if inference is None:
            return
        try:
            inference.refresh()
        except Exception:  # the provider failed in a way it does not handle itself: try again next time
            logger.exception("looking up the champion model failed; keeping the model before")
        del inference
