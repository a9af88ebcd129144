"""The model registry: rows in the warehouse, artifacts in the content-addressed store, audited stage changes.

A model version is a row of ``model_registry`` (one current row per model id and
version; read with FINAL) pointing at ``<state_dir>/models/<sha256>.onnx``. Its stage
moves only along :data:`models.registry_rows.TRANSITIONS`:

- ``register``: a new version enters as ``candidate``;
- ``promote``: a candidate (or a retired version) becomes ``champion`` only if it beats
  the champion on the same recent holdout by ``models.promotion_margin`` (relative log
  loss), has a lower log loss than the class-frequency prior on the holdout and in the
  walk-forward (``models.prior_margin``: predicting its training labels' shares for every
  row, what a model with no edge scores), beats every baseline's P&L after costs on the
  execution engine in ``models.promotion_min_fold_share`` of the windows judged (each
  walk-forward fold's test block, recorded at registration, and the holdout)
  and passes the sanity checks (no NaN output, not constant, expected calibration
  error of every class within ``models.calibration_bound``); the champion it replaces
  is ``retired``. A version whose feature schema differs from the champion's cannot be
  compared on the same features: it is judged by the sanity checks alone, and the
  decision says so;
- ``rollback``: the champion is retired and the version that was champion before it
  (and was not itself rolled back since) is restored;
- ``shadow``: a candidate (or a retired version) becomes a ``challenger`` of the champion
  of its timeframe in a slot: its own model id's, or (``against``) another model id's, say
  ``lgbm_direction v1`` against the ``ensemble_direction`` champion. It must have the
  champion's contract (:func:`models.promotion.contract_mismatches`: timeframe, feature
  schema, label definition, a shared symbol), or it is refused. The dataflow scores it
  beside that champion and stores its predictions under its own model id with
  ``role = 'challenger'``, never as signals. Promoting a challenger also compares the two
  on those live predictions (``models.shadow``); with ``models.shadow_min_days`` > 0 it
  must have been scored that many days and beaten the champion's live log loss. It then
  becomes the champion of the slot, whatever its model id; the champion it replaces is
  retired; other challengers stay challengers.

Every change, and every refused promotion, is an audited row of
``model_registry_events`` naming who or what did it and why; the registry row carries
the latest change's actor and reason. With ``models.mlflow_tracking_uri`` set, every change is
then mirrored to MLflow (:mod:`models.tracking`): the warehouse stays the record, MLflow
follows it, and a failure of MLflow is a warning, never a failed change. Registration takes the next version number and
reads the row back: a concurrent trainer that took the same number is detected and the
loser takes the next one.

A slot is ``(slot id, timeframe)``: the slot id is a model id, the version's own unless it
was shadowed against another model id's champion (then ``params['slot']`` names that id,
and keeps naming it once the version is promoted). A slot has at most one champion: it
alone trades; promoting a 5-minute version retires only the 5-minute champion of its
slot. The streams serve the slots of ``models.registry_id`` through
``streams.champions.RegistryModelProvider`` (in the core, so that ``streams/`` imports no
component).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from models.dataset import Dataset
from models.errors import PromotionRefused, RegistryError
from models.promotion import PromotionDecision, contract_mismatches, rollback_target
from models.promotion_review import PromotionReview
from models.registry_rows import CANDIDATE, RETIRED, RegistryEntry, RegistryEvent
from models.registry_table import RegistryTable
from models.results import SavedModel, TrainingResult
from models.store import ArtifactStore
from models.tracking import MirrorStatus, ModelMirror
from tickwave.clock import Clock, SystemClock
from tickwave.config import Settings
from tickwave.modeling import CHALLENGER, CHAMPION, ModelArtifact

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger(__name__)

__all__ = [
    "CANDIDATE",
    "CHALLENGER",
    "CHAMPION",
    "RETIRED",
    "ModelRegistry",
    "PromotionDecision",
    "RegistryEntry",
    "RegistryEvent",
]


class ModelRegistry:
    """The stage changes of model versions (register, promote, shadow, roll back), each audited.

    Reads go to :class:`models.registry_table.RegistryTable` (also ``table``), the judging of a
    promotion to :class:`models.promotion_review.PromotionReview` (also ``review``).
    """

    def __init__(self, settings: Settings, client: Client | None = None, clock: Clock | None = None) -> None:
        """Use ``client`` (default: a new warehouse connection), the state dir's artifact store and ``clock``.

        ``clock`` stamps every change and bounds the live shadow window (default: the system clock).
        """
        if client is None:
            from adapters.warehouse.client import connect

            client = connect(settings)
        self.settings = settings
        self.client = client
        self.store = ArtifactStore(settings.state_path / "models")
        self.table = RegistryTable(client, self.store, clock or SystemClock())
        self.review = PromotionReview(self.table, settings)
        self.mirror = ModelMirror.from_settings(settings)
        self.mirrored: MirrorStatus | None = None  # what the mirror did since this registry was opened

    def close(self) -> None:
        """Close the warehouse connection."""
        self.client.close()

    # -- reading --------------------------------------------------------------------------

    def entries(self, model_id: str | None = None) -> list[RegistryEntry]:
        """Return every version (of ``model_id``, or of all models), newest first."""
        return self.table.entries(model_id)

    def entry(self, model_id: str, version: int) -> RegistryEntry:
        """Return one version (:meth:`RegistryTable.entry`)."""
        return self.table.entry(model_id, version)

    def champion(self, slot: str | None, timeframe: str | None = None) -> RegistryEntry | None:
        """Return the champion of the slot ``(slot, timeframe)``, or None (:meth:`RegistryTable.champion`)."""
        return self.table.champion(slot, timeframe)

    def slot_entries(self, slot: str | None, timeframe: str | None = None) -> list[RegistryEntry]:
        """Return every version in the slots ``slot`` names, newest first."""
        return self.table.slot_entries(slot, timeframe)

    def events(self, model_id: str) -> list[RegistryEvent]:
        """Return the audit trail of ``model_id``, oldest first."""
        return self.table.events(model_id)

    def artifact(self, entry: RegistryEntry) -> ModelArtifact:
        """Return the servable artifact of ``entry`` (bytes checked against their SHA-256)."""
        return self.table.artifact(entry)

    def holdout_for(self, entry: RegistryEntry) -> Dataset:
        """Rebuild the candidate's holdout from the warehouse (:meth:`PromotionReview.holdout_for`)."""
        return self.review.holdout_for(entry)

    def evaluate(self, candidate: RegistryEntry, holdout: Dataset) -> PromotionDecision:
        """Judge ``candidate`` against its slot's champion on ``holdout`` (:meth:`PromotionReview.evaluate`)."""
        return self.review.evaluate(candidate, holdout)

    # -- changing stages ------------------------------------------------------------------

    def _commit(self, entries: list[RegistryEntry], events: list[RegistryEvent]) -> None:
        # Write the record, then bring MLflow (when configured) in line with it for the model ids touched.
        self.table.commit(entries, events)
        if self.mirror is None:
            return
        model_ids = sorted({entry.model_id for entry in entries} | {event.model_id for event in events})
        status = self.mirror.sync(model_ids, self.table.entries, self.table.events)
        runs = {**(self.mirrored.runs if self.mirrored else {}), **status.runs}
        self.mirrored = MirrorStatus(runs, status.failure)

    def register(
        self, saved: SavedModel, result: TrainingResult[Any], actor: str, figures: dict[str, float] | None = None
    ) -> RegistryEntry:
        """Record a stored artifact as the next candidate version of its model id.

        ``figures`` join the training's metrics: what only the training run can measure, such as the
        walk-forward folds on the engine (``fold_<n>_*``, :mod:`models.fold_judgement`).
        """
        dataset = result.dataset
        metadata = saved.metadata
        params = {
            **result.params,
            "symbols": ",".join(dataset.symbols),
            "timeframe": dataset.timeframe,
            "horizon_bars": str(dataset.label_spec.horizon_bars),
            "dead_zone_bps": str(dataset.label_spec.dead_zone_bps),
            "label_definition": dataset.label_spec.describe(),
            "holdout_from_ms": str(metadata["holdout_range_ms"][0]),
            "holdout_to_ms": str(metadata["holdout_range_ms"][1]),
        }
        for _ in range(5):
            version = self.table.next_version(saved.model_id)
            now = self.table.now_ms()
            entry = RegistryEntry(
                model_id=saved.model_id,
                model_version=version,
                stage=CANDIDATE,
                framework=saved.framework,
                artifact_uri=saved.artifact_uri,
                artifact_sha256=saved.sha256,
                feature_schema_hash=dataset.schema_hash,
                metrics={**result.metrics(), **(figures or {})},
                params=params,
                trained_from_ms=dataset.from_ms,
                trained_to_ms=dataset.to_ms,
                created_at_ms=now,
                updated_at_ms=now,
                stage_changed_by=actor,
                stage_reason="trained",
            )
            self.table.commit([entry], [])
            stored = self.entry(saved.model_id, version)
            if stored.created_at_ms == now and stored.artifact_sha256 == saved.sha256:
                registered = RegistryEvent(
                    saved.model_id,
                    version,
                    "registered",
                    "",
                    CANDIDATE,
                    actor,
                    f"artifact {saved.sha256[:12]}",
                    now,
                    entry.metrics,
                )
                self._commit([], [registered])
                return stored
            logger.warning("model=%s version=%d taken by a concurrent registration; retrying", saved.model_id, version)
        raise RegistryError(f"could not allocate a version of {saved.model_id}: too many concurrent registrations")

    def promote(self, model_id: str, version: int, actor: str, holdout: Dataset | None = None) -> PromotionDecision:
        """Make ``version`` the champion of its slot if it passes the promotion rules; audit the outcome either way.

        The champion it replaces (of its slot and timeframe, whatever that one's model id) is retired.

        Args:
            model_id: the model.
            version: the version to promote (a candidate or a retired version).
            actor: who or what asks (recorded).
            holdout: the holdout to judge on (default: the candidate's, rebuilt from the warehouse).

        Raises:
            PromotionRefused: naming every failed rule (the refusal is audited; nothing else changes).
            RegistryError: for an unknown version, or one that is already champion.
        """
        candidate = self.entry(model_id, version)
        if candidate.stage == CHAMPION:
            raise RegistryError(f"{candidate.name} is already the champion")
        decision = self.review.evaluate(
            candidate, holdout if holdout is not None else self.review.holdout_for(candidate)
        )
        decision = self.review.judged_in_shadow(candidate, decision)
        now = self.table.now_ms()
        reason = "; ".join(decision.notes + decision.failures)
        if not decision.is_promoted:
            refused = RegistryEvent(
                model_id,
                version,
                "promotion_refused",
                candidate.stage,
                candidate.stage,
                actor,
                reason,
                now,
                decision.figures,
            )
            self._commit([], [refused])
            raise PromotionRefused(model_id, version, decision.failures, decision.notes, decision.figures)
        champions = [
            entry for entry in self.slot_entries(candidate.slot, candidate.timeframe) if entry.stage == CHAMPION
        ]
        entries = [candidate.moved_to(CHAMPION, actor, reason, now)]
        events = [
            RegistryEvent(
                model_id, version, "promoted", candidate.stage, CHAMPION, actor, reason, now, decision.figures
            )
        ]
        for old in champions:
            replaced = f"replaced by {candidate.name}"
            entries.append(old.moved_to(RETIRED, actor, replaced, now))
            events.append(
                RegistryEvent(old.model_id, old.model_version, "retired", CHAMPION, RETIRED, actor, replaced, now)
            )
        self._commit(entries, events)
        return decision

    def shadow(self, model_id: str, version: int, actor: str, against: str | None = None) -> RegistryEntry:
        """Make ``version`` a challenger: scored in shadow by the dataflow beside a champion, never traded.

        Args:
            model_id: the challenger's model id.
            version: its version (a candidate or a retired version).
            actor: who or what asks (recorded).
            against: the model id whose champion (of the challenger's timeframe) it challenges; default:
                the slot it is in (its own model id unless shadowed against another before).

        Raises:
            RegistryError: for an unknown version; one whose stage cannot become challenger (a champion);
                ``against`` naming a model id with no champion of that timeframe; or a challenger whose
                contract differs from the champion's (:func:`models.promotion.contract_mismatches`).
        """
        entry = self.entry(model_id, version)
        slot = against or entry.slot
        champion = self.champion(slot, entry.timeframe)
        if champion is None and slot != model_id:
            raise RegistryError(
                f"{slot} has no {entry.timeframe} champion for {entry.name} to challenge "
                "(see `tickwave models list --all`)"
            )
        if champion is not None and champion.name != entry.name:
            mismatches = contract_mismatches(entry, champion)
            if mismatches:
                raise RegistryError(f"{entry.name} cannot challenge {champion.name}: " + "; ".join(mismatches))
        params = {key: value for key, value in entry.params.items() if key != "slot"}
        if slot != model_id:
            params["slot"] = slot
        now = self.table.now_ms()
        beside = f"champion {champion.name}" if champion is not None and champion.name != entry.name else "champion"
        reason = (
            f"scored in shadow beside the {entry.timeframe} {beside} (slot {slot}); its predictions are never traded"
        )
        event = RegistryEvent(model_id, version, "shadowed", entry.stage, CHALLENGER, actor, reason, now)
        self._commit([replace(entry, params=params).moved_to(CHALLENGER, actor, reason, now)], [event])
        return self.entry(model_id, version)

    def rollback(
        self, model_id: str, actor: str, reason: str = "rollback", timeframe: str | None = None
    ) -> RegistryEntry:
        """Retire the champion of the slot ``model_id`` names (of ``timeframe``; default: the one promoted last).

        The version restored is the slot's previous champion, whatever its model id.

        Raises:
            RegistryError: when there is no champion, or no earlier champion of its slot and timeframe to restore.
        """
        current = self.champion(model_id, timeframe)
        if current is None:
            raise RegistryError(f"{model_id} has no champion to roll back")
        same_slot = {entry.name: entry for entry in self.slot_entries(current.slot, current.timeframe)}
        events = [
            event
            for version_id in sorted({entry.model_id for entry in same_slot.values()})
            for event in self.events(version_id)
            if f"{event.model_id} v{event.model_version}" in same_slot
        ]
        target_key = rollback_target(events, (current.model_id, current.model_version))
        if target_key is None:
            raise RegistryError(f"{current.name} is the only champion {model_id} has had: nothing to roll back to")
        target = same_slot[f"{target_key[0]} v{target_key[1]}"]
        now = self.table.now_ms()
        restored_reason = f"restored by rolling back {current.name}: {reason}"
        self._commit(
            [current.moved_to(RETIRED, actor, reason, now), target.moved_to(CHAMPION, actor, restored_reason, now)],
            [
                RegistryEvent(
                    current.model_id, current.model_version, "rolled_back", CHAMPION, RETIRED, actor, reason, now
                ),
                RegistryEvent(
                    target.model_id,
                    target.model_version,
                    "restored",
                    target.stage,
                    CHAMPION,
                    actor,
                    restored_reason,
                    now,
                ),
            ],
        )
        return self.entry(target.model_id, target.model_version)
