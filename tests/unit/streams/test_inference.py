"""The flow's inference: the champion is looked up off the flow's thread, swapped in, and failures keep the old one."""

from __future__ import annotations

import gc
import logging
import threading
import time
from dataclasses import replace

import pytest

from streams.features import FeatureSpec
from streams.inference import Inference
from tests.unit.streams.tiny_model import StaticProvider, tiny_artifact
from tickwave.clock import ManualClock
from tickwave.contracts import FeatureVector
from tickwave.modeling import CHALLENGER, CHAMPION, ModelArtifact

NOW_MS = 1_700_000_000_000  # the predictions' stamp
SPEC = FeatureSpec()
WAIT_S = 10.0


@pytest.fixture(scope="module")
def artifact() -> ModelArtifact:
    return tiny_artifact(SPEC, timeframe="1s", symbols=("EURUSD",))


def warm_vector(bar_start_ms: int = 1_700_000_000_000) -> FeatureVector:
    values: dict[str, float | None] = {name: 0.1 * index for index, name in enumerate(SPEC.names)}
    return FeatureVector(
        symbol="EURUSD",
        timeframe="1s",
        bar_start_ms=bar_start_ms,
        values=values,
        is_warm=True,
        schema_hash=SPEC.schema_hash,
    )


class RecordingProvider:
    """Names ``artifact`` as champion and records which thread asked; ``gate`` (once set up) holds each answer."""

    def __init__(self, artifact: ModelArtifact | None) -> None:
        self.artifact = artifact
        self.threads: list[str] = []
        self.gate: threading.Event | None = None
        self.waiting = threading.Event()

    def champions(self) -> list[ModelArtifact]:
        self.threads.append(threading.current_thread().name)
        if self.gate is not None:
            self.waiting.set()
            self.gate.wait(WAIT_S)
        return [self.artifact] if self.artifact else []


def predict_until(inference: Inference, version: int) -> None:
    """Predict (as bar closes would) until the model of ``version`` serves, or fail after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        prediction = inference.predict(warm_vector())
        if prediction is not None and prediction.model_version == version:
            return
        time.sleep(0.005)
    pytest.fail(f"version {version} was not served within {WAIT_S} s")


def test_inference_when_champion_changes_then_watcher_swaps_it_and_flow_thread_asks_only_first(
    artifact: ModelArtifact,
) -> None:
    provider = RecordingProvider(artifact)
    inference = Inference(provider, SPEC.schema_hash, ManualClock(NOW_MS), refresh_s=0.01, settle_s=0.0)

    first = inference.predict(warm_vector())
    provider.artifact = replace(artifact, model_version=2)
    predict_until(inference, 2)

    assert first is not None and first.model_version == 1
    assert provider.threads[0] == threading.current_thread().name
    assert len(provider.threads) > 1 and set(provider.threads[1:]) == {"champion-watcher"}


def test_inference_when_lookup_hangs_then_predictions_go_on_with_the_current_model(artifact: ModelArtifact) -> None:
    provider = RecordingProvider(artifact)
    inference = Inference(provider, SPEC.schema_hash, ManualClock(NOW_MS), refresh_s=0.01, settle_s=0.0)
    inference.predict(warm_vector())
    provider.gate = threading.Event()
    try:
        assert provider.waiting.wait(WAIT_S), "the watcher never looked the champion up"

        served = [inference.predict(warm_vector(1_700_000_000_000 + 1000 * n)) for n in range(20)]

        assert all(prediction is not None and prediction.model_version == 1 for prediction in served)
    finally:
        provider.gate.set()


def test_inference_when_new_champion_cannot_load_then_previous_serves_and_error_logged_once(
    artifact: ModelArtifact, caplog: pytest.LogCaptureFixture
) -> None:
    provider = RecordingProvider(artifact)
    inference = Inference(provider, SPEC.schema_hash, ManualClock(NOW_MS), refresh_s=0.01, settle_s=0.0)
    inference.predict(warm_vector())
    broken = replace(artifact, model_version=2, onnx_bytes=b"not an onnx model")
    provider.artifact = broken
    asked = len(provider.threads)

    with caplog.at_level(logging.ERROR, logger="streams.inference"):
        deadline = time.monotonic() + WAIT_S
        while len(provider.threads) < asked + 3 and time.monotonic() < deadline:
            inference.predict(warm_vector())
            time.sleep(0.005)
    provider.artifact = replace(artifact, model_version=3)
    predict_until(inference, 3)

    assert len(provider.threads) >= asked + 3, "the watcher stopped looking up after the broken model"
    failures = [record for record in caplog.records if "could not be loaded" in record.getMessage()]
    assert len(failures) == 1 and "version=2" in failures[0].getMessage()


def test_inference_when_collected_then_its_watcher_thread_ends(artifact: ModelArtifact) -> None:
    inference = Inference(
        RecordingProvider(artifact), SPEC.schema_hash, ManualClock(NOW_MS), refresh_s=0.01, settle_s=0.0
    )
    inference.predict(warm_vector())
    watcher = inference._watcher
    assert watcher is not None and watcher.is_alive()

    del inference
    gc.collect()
    watcher.join(WAIT_S)

    assert not watcher.is_alive()


def test_inference_when_refreshed_with_a_challenger_then_each_keeps_its_own_slot_and_role(
    artifact: ModelArtifact,
) -> None:
    challenger = replace(artifact, model_version=2, role=CHALLENGER)
    # A challenger of another model id in the champion's slot, with the champion's version number.
    other = replace(artifact, model_id="lgbm", role=CHALLENGER, slot="tiny")
    inference = Inference(StaticProvider(artifact, challenger, other), SPEC.schema_hash, ManualClock(NOW_MS))

    inference.refresh()
    inference.refresh()  # the second lookup keeps the sessions: each must stay in its own slot

    slots = {key: (model.artifact.model_version, model.artifact.role) for key, model in inference.models.items()}
    assert slots == {
        ("tiny", "1s"): (1, CHAMPION),
        ("tiny", "1s", "challenger:tiny v2"): (2, CHALLENGER),
        ("tiny", "1s", "challenger:lgbm v1"): (1, CHALLENGER),
    }
    champion_only = inference.predict_many([warm_vector()])
    shadow = inference.predict_many([warm_vector()], role=CHALLENGER)
    assert [(p.model_id, p.model_version, p.role) for p in champion_only] == [("tiny", 1, CHAMPION)]
    assert sorted((p.model_id, p.model_version, p.role) for p in shadow) == [
        ("lgbm", 1, CHALLENGER),
        ("tiny", 2, CHALLENGER),
    ]
