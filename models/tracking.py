"""MLflow tracking: a mirror of the warehouse's model registry, for quants who compare runs in MLflow's UI.

The warehouse is the record of a model version: ``model_registry`` holds its stage, the
signals and orders join to it in SQL and the compliance reports read it. MLflow holds a
copy, rebuilt from that record by :meth:`ModelMirror.sync` after every registry change:

- each version is a run in the experiment ``models.mlflow_experiment`` (named ``<model id>
  v<version>``): its params (hyper-parameters, symbols, timeframe, label, holdout range and
  the data window), its metrics (holdout and walk-forward figures, the class prior's, the
  walk-forward folds on the engine) and, once judged, the promotion's figures
  (``promotion_*``: the engine P&L of the candidate and of each baseline on the holdout);
  the ONNX model (``model/``) and the training report (``report/``) as artifacts;
- the run's model is a version of the registered model named after the model id, tagged
  ``tickwave.model_version`` (MLflow numbers its versions itself) and ``tickwave.stage``;
- the aliases ``champion`` and ``challenger`` point at the model id's champion and
  challenger (the one changed last, when a model id has several: one per timeframe, or
  several challengers; the ``tickwave.stage`` tags name them all).

A sync compares the whole record with MLflow and writes what differs, so one that failed
(the server down) is repaired by the next. Tracking never blocks or fails training: every
request is bounded by ``models.mlflow_timeout_s`` without retries, and a failure is a
warning in the log and in :class:`MirrorStatus`, never an error.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from models.registry_rows import RegistryEntry, RegistryEvent
from models.store import ArtifactStore
from tickwave.config import Settings
from tickwave.modeling import CHALLENGER, CHAMPION

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

logger = logging.getLogger(__name__)

VERSION_TAG = "tickwave.model_version"
STAGE_TAG = "tickwave.stage"
SLOT_TAG = "tickwave.slot"
JUDGEMENT_TAG = "tickwave.judgement_event"  # the promotion decision whose figures the run carries
ALIASED_STAGES = (CHAMPION, CHALLENGER)
JUDGEMENTS = ("promoted", "promotion_refused")
MAX_PARAMS_PER_BATCH = 100  # MLflow's limits of one log_batch request
MAX_METRICS_PER_BATCH = 1000
MAX_PARAM_CHARS = 6000


@dataclass(frozen=True)
class MirrorStatus:
    """What a sync did: the runs it created (with their UI address) or why the mirror is behind."""

    runs: dict[str, str]  # "<model id> v<version>" -> address of its run in the MLflow UI
    failure: str | None = None  # None: MLflow agrees with the warehouse

    @property
    def is_mirrored(self) -> bool:
        """True when MLflow agrees with the warehouse after this sync."""
        return self.failure is None


# -- what the mirror holds (pure) ----------------------------------------------------------


def expected_aliases(entries: Sequence[RegistryEntry]) -> dict[str, int]:
    """Return the aliases a model id's versions should carry: ``champion`` / ``challenger`` -> version.

    A model id with several versions in one stage (a champion per timeframe, several challengers)
    gives the alias to the one changed last (then the higher version).
    """
    aliases: dict[str, int] = {}
    for stage in ALIASED_STAGES:
        staged = [entry for entry in entries if entry.stage == stage]
        if staged:
            aliases[stage] = max(staged, key=lambda entry: (entry.updated_at_ms, entry.model_version)).model_version
    return aliases


def run_params(entry: RegistryEntry) -> dict[str, str]:
    """Return the params of a version's run: the registry's params, the data window and what identifies it."""
    params = {
        **entry.params,
        "model_id": entry.model_id,
        "model_version": str(entry.model_version),
        "framework": entry.framework,
        "feature_schema_hash": entry.feature_schema_hash,
        "artifact_sha256": entry.artifact_sha256,
        "trained_from_ms": str(entry.trained_from_ms),
        "trained_to_ms": str(entry.trained_to_ms),
        "trained_from": _iso(entry.trained_from_ms),
        "trained_to": _iso(entry.trained_to_ms),
    }
    return {key: value[:MAX_PARAM_CHARS] for key, value in params.items()}


def latest_judgement(events: Sequence[RegistryEvent], version: int) -> RegistryEvent | None:
    """Return the latest promotion decision (promoted or refused) of ``version`` among ``events``, or None."""
    judged = [event for event in events if event.model_version == version and event.action in JUDGEMENTS]
    return max(judged, key=lambda event: event.occurred_at_ms) if judged else None


def run_address(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """Return the address of a run in the MLflow UI."""
    return f"{tracking_uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def _iso(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat()


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- the mirror (I/O) -----------------------------------------------------------------------


class ModelMirror:
    """Make MLflow agree with the warehouse's registry for some model ids (:meth:`sync`)."""

    def __init__(self, tracking_uri: str, experiment: str, timeout_s: float, store: ArtifactStore) -> None:
        """Mirror into the server at ``tracking_uri`` (experiment ``experiment``); artifacts come from ``store``."""
        self.tracking_uri = tracking_uri.rstrip("/")
        self.experiment = experiment
        self.timeout_s = timeout_s
        self.store = store

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelMirror | None:
        """Return the mirror ``models.mlflow_tracking_uri`` configures, or None when it is unset (the default)."""
        models = settings.models
        if models.mlflow_tracking_uri is None:
            return None
        return cls(
            models.mlflow_tracking_uri,
            models.mlflow_experiment,
            models.mlflow_timeout_s,
            ArtifactStore(settings.state_path / "models"),
        )

    def sync(
        self,
        model_ids: Sequence[str],
        entries_of: Callable[[str], list[RegistryEntry]],
        events_of: Callable[[str], list[RegistryEvent]],
    ) -> MirrorStatus:
        """Write to MLflow what differs from the warehouse's record of ``model_ids``; never raise.

        Args:
            model_ids: the model ids whose versions changed.
            entries_of: the warehouse's versions of a model id (the record).
            events_of: the warehouse's audit trail of a model id (the promotion decisions' figures).

        Returns:
            The runs created, or the failure (logged as a warning) that left MLflow behind: the next
            sync repairs it.
        """
        runs: dict[str, str] = {}
        try:
            self._check_reachable()
            with self._bounded_requests():
                client = self._client()
                experiment_id = self._experiment_id(client)
                for model_id in sorted(set(model_ids)):
                    runs.update(self._sync_model(client, experiment_id, entries_of(model_id), events_of(model_id)))
        except Exception as exc:  # the mirror's edge: any failure is logged and returned, never raised
            failure = f"MLflow at {self.tracking_uri} not updated ({type(exc).__name__}: {exc})"
            logger.warning("models=%s %s; the next registry change retries", ",".join(model_ids), failure)
            return MirrorStatus(runs, failure[:500])
        return MirrorStatus(runs)

    # -- the steps of a sync ------------------------------------------------------------

    def _check_reachable(self) -> None:
        # One bounded probe first: a server that is down costs one timeout, not one per request.
        request = urllib.request.Request(f"{self.tracking_uri}/health", method="GET")  # noqa: S310 - http(s) only
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
            if response.status != 200:
                raise ConnectionError(f"health answered {response.status}")

    @contextmanager
    def _bounded_requests(self) -> Iterator[None]:
        # MLflow's client reads its retry and timeout bounds from the environment at each request;
        # an operator's own values win.
        bounds = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(self.timeout_s) or 1)}
        added = [name for name in bounds if name not in os.environ]
        for name in added:
            os.environ[name] = bounds[name]
        try:
            yield
        finally:
            for name in added:
                os.environ.pop(name, None)

    def _client(self) -> MlflowClient:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    def _experiment_id(self, client: MlflowClient) -> str:
        experiment = client.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return str(experiment.experiment_id)
        # The UI shows an experiment of this kind with its model-training views (runs, metrics, models).
        return str(
            client.create_experiment(self.experiment, tags={"mlflow.experimentKind": "custom_model_development"})
        )

    def _sync_model(
        self,
        client: MlflowClient,
        experiment_id: str,
        entries: list[RegistryEntry],
        events: list[RegistryEvent],
    ) -> dict[str, str]:
        if not entries:
            return {}
        model_id = entries[0].model_id
        self._ensure_registered_model(client, model_id)
        mirrored = self._mirrored_versions(client, model_id)
        runs: dict[str, str] = {}
        for entry in sorted(entries, key=lambda entry: entry.model_version):
            version = mirrored.get(entry.model_version)
            if version is None:
                version = self._create_version(client, experiment_id, entry)
                mirrored[entry.model_version] = version
                runs[entry.name] = run_address(self.tracking_uri, experiment_id, str(version.run_id))
            self._sync_tags(client, entry, version)
            judgement = latest_judgement(events, entry.model_version)
            if judgement is not None and version.run_id and version.tags.get(JUDGEMENT_TAG) != judgement.event_id:
                self._log_judgement(client, str(version.run_id), entry, judgement)
        self._sync_aliases(client, model_id, entries, mirrored)
        return runs

    def _ensure_registered_model(self, client: MlflowClient, model_id: str) -> None:
        from mlflow.exceptions import MlflowException

        try:
            client.get_registered_model(model_id)
        except MlflowException:
            client.create_registered_model(
                model_id, description=f"direction model {model_id}: mirrored from tickwave's model registry"
            )

    def _mirrored_versions(self, client: MlflowClient, model_id: str) -> dict[int, ModelVersion]:
        # MLflow numbers versions itself: the warehouse's version is the tag. The lowest MLflow version wins
        # when two concurrent syncs created the same one.
        by_tag: dict[int, ModelVersion] = {}
        for version in client.search_model_versions(f"name='{model_id}'"):
            tag = version.tags.get(VERSION_TAG, "")
            if tag.isdigit() and (int(tag) not in by_tag or int(version.version) < int(by_tag[int(tag)].version)):
                by_tag[int(tag)] = version
        return by_tag

    def _create_version(self, client: MlflowClient, experiment_id: str, entry: RegistryEntry) -> ModelVersion:
        from mlflow.entities import Metric, Param, RunTag

        tags = {VERSION_TAG: str(entry.model_version), "tickwave.model_id": entry.model_id}
        started_ms = entry.created_at_ms - round(1000 * entry.metrics.get("training_seconds", 0.0))
        run = client.create_run(experiment_id, start_time=started_ms, tags=tags, run_name=entry.name)
        run_id = run.info.run_id
        params = [Param(key, value) for key, value in sorted(run_params(entry).items())]
        metrics = [Metric(key, float(value), entry.created_at_ms, 0) for key, value in sorted(entry.metrics.items())]
        for chunk in _chunks(params, MAX_PARAMS_PER_BATCH):
            client.log_batch(run_id, params=list(chunk))
        for chunk in _chunks(metrics, MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=list(chunk))
        client.log_batch(run_id, tags=[RunTag("tickwave.stage_reason", entry.stage_reason[:5000])])
        onnx = self.store.onnx_path(entry.artifact_sha256)
        client.log_artifact(run_id, str(onnx), artifact_path="model")
        client.log_artifact(run_id, str(self.store.metadata_path(entry.artifact_sha256)), artifact_path="model")
        report = self.store.report_dir(entry.artifact_sha256)
        if report.is_dir():
            client.log_artifacts(run_id, str(report), artifact_path="report")
        client.set_terminated(run_id, end_time=entry.created_at_ms)
        source = f"{run.info.artifact_uri}/model"
        version = client.create_model_version(entry.model_id, source, run_id=run_id, tags=tags)
        logger.info("model=%s version=%d mirrored as MLflow run %s", entry.model_id, entry.model_version, run_id)
        return version

    def _sync_tags(self, client: MlflowClient, entry: RegistryEntry, version: ModelVersion) -> None:
        wanted = {STAGE_TAG: entry.stage, SLOT_TAG: entry.slot}
        for key, value in wanted.items():
            if version.tags.get(key) != value:
                client.set_model_version_tag(entry.model_id, str(version.version), key, value)

    def _log_judgement(self, client: MlflowClient, run_id: str, entry: RegistryEntry, event: RegistryEvent) -> None:
        from mlflow.entities import Metric

        metrics = [
            Metric(f"promotion_{key}", float(value), event.occurred_at_ms, 0)
            for key, value in sorted(event.metrics.items())
        ]
        for chunk in _chunks(metrics, MAX_METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=list(chunk))
        client.set_tag(run_id, "tickwave.promotion", f"{event.action}: {event.reason}"[:5000])
        client.set_tag(run_id, JUDGEMENT_TAG, event.event_id)
        version = self._mirrored_versions(client, entry.model_id)[entry.model_version]
        client.set_model_version_tag(entry.model_id, str(version.version), JUDGEMENT_TAG, event.event_id)

    def _sync_aliases(
        self,
        client: MlflowClient,
        model_id: str,
        entries: list[RegistryEntry],
        mirrored: dict[int, ModelVersion],
    ) -> None:
        current = {alias: str(version) for alias, version in client.get_registered_model(model_id).aliases.items()}
        wanted = {alias: str(mirrored[version].version) for alias, version in expected_aliases(entries).items()}
        for alias in ALIASED_STAGES:
            if alias in wanted and current.get(alias) != wanted[alias]:
                client.set_registered_model_alias(model_id, alias, wanted[alias])
            elif alias not in wanted and alias in current:
                client.delete_registered_model_alias(model_id, alias)


def read_mirror(tracking_uri: str, model_id: str) -> tuple[dict[int, str], dict[str, int]]:
    """Return what MLflow holds of ``model_id``: the stage tag of each warehouse version, and alias -> that version.

    What a check of the mirror compares with the warehouse's stages and :func:`expected_aliases`.
    """
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    by_mlflow_version: dict[str, int] = {}
    stages: dict[int, str] = {}
    for version in client.search_model_versions(f"name='{model_id}'"):
        tag = int(version.tags[VERSION_TAG])
        by_mlflow_version[str(version.version)] = tag
        stages[tag] = version.tags.get(STAGE_TAG, "")
    aliases = {
        alias: by_mlflow_version[str(version)]
        for alias, version in client.get_registered_model(model_id).aliases.items()
    }
    return stages, aliases


__all__ = ["MirrorStatus", "ModelMirror", "expected_aliases", "read_mirror", "run_params"]
