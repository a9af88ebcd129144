"""Training runs and registry stages mirrored to a real MLflow server; the warehouse stays the record.

One model id goes through train (while MLflow is down), train again, shadow, promote and
rollback; after each step MLflow must agree with the warehouse's registry: every version's
stage tag, and the ``champion`` / ``challenger`` aliases on the versions that hold them.
The run is then opened in MLflow's UI in headless Chromium.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient

from adapters.endpoints import LOOPBACK, Endpoint, free_port
from app.demo import _where_to_look
from models.pipeline import TrainOutcome, train_model
from models.registry import CANDIDATE, CHALLENGER, CHAMPION, RETIRED, ModelRegistry
from models.store import ArtifactStore
from models.tracking import ModelMirror, expected_aliases, read_mirror
from tests.integration.chromium import ARTIFACTS, artifact, chromium
from tests.integration.models.conftest import RANGE_MS, SYMBOLS, external_settings
from tests.plugins.mlflow import MlflowServer
from tickwave.config import Settings

# The module's fixture boots MLflow and trains twice: ~3 min on a 2-core machine shared with other suites.
pytestmark = pytest.mark.timeout(600)
WEAK = {"n_estimators": 1, "learning_rate": 0.05, "baselines": (), "min_trades": 0}  # as in the lifecycle test
STRONG = {"n_estimators": 40, "max_depth": 1, "learning_rate": 0.1}


def with_models(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update={"models": settings.models.model_copy(update=changes)})


def warehouse_view(settings: Settings) -> tuple[dict[int, str], dict[str, int]]:
    """The record: each version's stage, and the aliases MLflow should carry."""
    registry = ModelRegistry(with_models(settings, mlflow_tracking_uri=None))
    try:
        entries = registry.entries(settings.models.model_id)
    finally:
        registry.close()
    return {entry.model_version: entry.stage for entry in entries}, expected_aliases(entries)


@dataclass
class Tracked:
    """What the lifecycle left: per step, the warehouse's view and MLflow's."""

    settings: Settings
    down: TrainOutcome  # trained while MLflow was down
    live: TrainOutcome
    steps: dict[str, tuple[tuple[dict[int, str], dict[str, int]], tuple[dict[int, str], dict[str, int]]]]


@pytest.fixture(scope="module")
def tracked(
    warehouse_settings: Settings,
    warehouse_endpoint: Endpoint,
    models_database: str,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Tracked]:
    base = external_settings(
        warehouse_settings,
        warehouse_endpoint,
        models_database,
        tmp_path_factory.mktemp("tracked") / "state",
        mlflow_tracking_uri=mlflow_server.uri,
        mlflow_experiment=f"pytest-{time.time_ns()}",
        mlflow_timeout_s=2.0,
    )
    model_id = base.models.model_id
    assert model_id is not None
    steps = {}

    def record(step: str) -> None:
        steps[step] = (warehouse_view(base), read_mirror(mlflow_server.uri, model_id))

    nobody = f"http://{LOOPBACK}:{free_port()}"  # MLflow down: nothing listens there
    down = train_model(with_models(base, mlflow_tracking_uri=nobody, **WEAK), SYMBOLS, RANGE_MS, "pytest-down")
    mlflow_server.ready()  # booted while the first run trained
    live = train_model(with_models(base, **STRONG), SYMBOLS, RANGE_MS, "pytest-live", promote=False)
    record("train")
    registry = ModelRegistry(with_models(base, **STRONG))
    try:
        registry.shadow(model_id, 2, "pytest-shadow")
        record("shadow")
        registry.promote(model_id, 2, "pytest-promote")
        record("promote")
        registry.rollback(model_id, "pytest-oncall", "bad fills after the release")
        record("rollback")
        assert registry.mirrored is not None and registry.mirrored.is_mirrored, registry.mirrored
    finally:
        registry.close()
    yield Tracked(base, down, live, steps)


def test_training_when_mlflow_is_down_then_it_registers_and_says_the_mirror_is_behind(tracked: Tracked) -> None:
    down = tracked.down

    assert down.entry.model_version == 1 and down.entry.stage == CHAMPION  # training went on
    assert down.tracking is not None and not down.tracking.is_mirrored
    assert down.tracking.failure is not None and "not updated" in down.tracking.failure
    assert tracked.live.tracking is not None and tracked.live.tracking.is_mirrored, tracked.live.tracking
    # The next change's sync mirrored the version missed while MLflow was down, beside the new one.
    assert sorted(tracked.live.tracking.runs) == [f"{tracked.settings.models.model_id} v{n}" for n in (1, 2)]


def test_mirror_when_the_server_does_not_answer_then_one_bounded_probe_and_a_warning(tmp_path: Path) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # accepts connections, never answers
    silent.bind((LOOPBACK, 0))
    silent.listen(8)
    mirror = ModelMirror(f"http://{LOOPBACK}:{silent.getsockname()[1]}", "pytest", 1.0, ArtifactStore(tmp_path))
    try:
        started = time.monotonic()
        status = mirror.sync(["m_silent"], lambda _: [], lambda _: [])
        elapsed = time.monotonic() - started
    finally:
        silent.close()

    assert not status.is_mirrored and status.failure is not None and "timed out" in status.failure
    assert 0.9 < elapsed < 3.0  # the 1 s bound, once


@pytest.mark.parametrize(
    ("step", "stages", "aliases"),
    [
        ("train", {1: CHAMPION, 2: CANDIDATE}, {CHAMPION: 1}),
        ("shadow", {1: CHAMPION, 2: CHALLENGER}, {CHAMPION: 1, CHALLENGER: 2}),
        ("promote", {1: RETIRED, 2: CHAMPION}, {CHAMPION: 2}),
        ("rollback", {1: CHAMPION, 2: RETIRED}, {CHAMPION: 1}),
    ],
)
def test_mirror_when_stages_change_then_mlflow_agrees_with_the_warehouse(
    tracked: Tracked, step: str, stages: dict[int, str], aliases: dict[str, int]
) -> None:
    warehouse, mlflow = tracked.steps[step]

    assert warehouse == (stages, aliases)  # the record went where the step sends it
    assert mlflow == warehouse


def test_run_when_trained_then_it_holds_params_window_metrics_engine_pnl_and_artifacts(
    tracked: Tracked, mlflow_server: MlflowServer
) -> None:
    client = MlflowClient(tracking_uri=mlflow_server.uri)
    model_id = tracked.settings.models.model_id
    version = next(
        v for v in client.search_model_versions(f"name='{model_id}'") if v.tags["tickwave.model_version"] == "2"
    )
    run = client.get_run(version.run_id)
    entry = tracked.live.entry

    assert run.info.run_name == f"{model_id} v2"
    assert run.data.params["symbols"] == ",".join(SYMBOLS) and run.data.params["n_estimators"] == "40"
    assert (run.data.params["trained_from_ms"], run.data.params["trained_to_ms"]) == (
        str(entry.trained_from_ms),
        str(entry.trained_to_ms),
    )
    for key in ("holdout_log_loss", "wf_log_loss", "holdout_prior_log_loss", "wf_prior_log_loss"):
        assert run.data.metrics[key] == pytest.approx(entry.metrics[key]), key
    folds = {key for key in run.data.metrics if key.startswith("fold_1_") and key.endswith("_pnl_account")}
    assert folds == {f"fold_1_{name}_pnl_account" for name in ("candidate", "flat", "last_direction")}
    promoted = {key for key in run.data.metrics if key.startswith("promotion_") and key.endswith("_pnl_account")}
    assert {
        "promotion_candidate_pnl_account",
        "promotion_baseline_flat_pnl_account",
        "promotion_baseline_last_direction_pnl_account",
    } <= promoted
    model = {item.path for item in client.list_artifacts(run.info.run_id, "model")}
    report = {item.path for item in client.list_artifacts(run.info.run_id, "report")}
    assert f"model/{entry.artifact_sha256}.onnx" in model and "report/report.html" in report
    onnx = Path(client.download_artifacts(run.info.run_id, f"model/{entry.artifact_sha256}.onnx", str(ARTIFACTS)))
    assert onnx.read_bytes() == tracked.live.saved.onnx_bytes
    onnx.unlink()


def test_mlflow_ui_when_the_run_is_opened_in_headless_chromium_then_it_shows_the_run_and_its_metrics(
    tracked: Tracked, tmp_path: Path
) -> None:
    model_id = tracked.settings.models.model_id
    url = tracked.live.tracking.runs[f"{model_id} v2"] if tracked.live.tracking else ""
    screenshot = artifact("mlflow_training_run.png")
    dom = chromium(
        url,
        tmp_path / "chromium",
        "--dump-dom",
        f"--screenshot={screenshot}",
        window="1600,1400",
        virtual_time_ms=30_000,
        timeout=180,
    )

    assert f"{model_id} v2" in dom, dom[-3000:]
    assert "holdout_log_loss" in dom, dom[-3000:]
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000


def test_demo_when_mlflow_is_configured_then_where_to_look_names_its_ui(
    tracked: Tracked, capsys: pytest.CaptureFixture[str]
) -> None:
    _where_to_look(tracked.settings, {})
    configured = capsys.readouterr().out
    _where_to_look(with_models(tracked.settings, mlflow_tracking_uri=None), {})
    unset = capsys.readouterr().out

    assert f"MLflow UI           {tracked.settings.models.mlflow_tracking_uri}" in configured
    assert tracked.settings.models.mlflow_experiment in configured
    assert "MLflow" not in unset and "service status" in unset
