"""The model registry: rows in the warehouse, artifacts in the content-addressed store, audited stage changes.

A model version is a row of ``model_registry`` (one current row per model id and
version; read with FINAL) pointing at ``<state_dir>/models/<sha256>.onnx``. Its stage
moves only along :data:`TRANSITIONS`:

- ``register``: a new version enters as ``candidate``;
- ``promote``: a candidate (or a retired version) becomes ``champion`` only if it beats
  the champion on the same recent holdout by ``models.promotion_margin`` (relative log
  loss) and passes the sanity checks (no NaN output, not constant, expected calibration
  error of every class within ``models.calibration_bound``); the champion it replaces
  is ``retired``. A version whose feature schema differs from the champion's cannot be
  compared on the same features: it is judged by the sanity checks alone, and the
  decision says so;
- ``rollback``: the champion is retired and the version that was champion before it
  (and was not itself rolled back since) is restored;
- ``shadow``: a candidate (or a retired version) becomes a ``challenger`` of the champion
  of its timeframe in a slot: its own model id's, or (``against``) another model id's, say
  ``lgbm_direction v1`` against the ``ensemble_direction`` champion. It must have the
  champion's contract (:func:`contract_mismatches`: timeframe, feature schema, label
  definition, a shared symbol), or it is refused. The dataflow scores it beside that
  champion and stores its predictions under its own model id with ``role = 'challenger'``,
  never as signals. Promoting a challenger also compares the two on those live
  predictions (``models.shadow``); with ``models.shadow_min_days`` > 0 it must have been
  scored that many days and beaten the champion's live log loss. It then becomes the
  champion of the slot, whatever its model id; the champion it replaces is retired; other
  challengers stay challengers.

Every change, and every refused promotion, is an audited row of
``model_registry_events`` naming who or what did it and why; the registry row carries
the latest change's actor and reason. Registration takes the next version number and
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
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.warehouse_writer import BatchWriter
from models.dataset import LabelSpec, build_dataset, query_bars, query_features
from models.engine_backtest import compare_on_engine
from models.errors import PromotionRefused, RegistryError
from models.evaluation import BaselineComparison, log_loss, reliability
from models.serving import ServingModel
from models.store import ArtifactStore
from tickwave.config import Settings
from tickwave.modeling import CHALLENGER, CHAMPION, ModelArtifact, SignalRules, artifact_from_onnx
from tickwave.warehouse.tables import MODEL_REGISTRY, MODEL_REGISTRY_EVENTS, Table

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

    from models.dataset import Dataset
    from models.results import SavedModel, TrainingResult

logger = logging.getLogger(__name__)

CANDIDATE, RETIRED = "candidate", "retired"
TRANSITIONS = frozenset({
    ("", CANDIDATE), (CANDIDATE, CHAMPION), (RETIRED, CHAMPION), (CHAMPION, RETIRED),
    (CANDIDATE, CHALLENGER), (RETIRED, CHALLENGER), (CHALLENGER, CHAMPION), (CHALLENGER, RETIRED),
})  # fmt: skip
CONSTANT_STD = 1e-6  # below this spread across rows, a class probability counts as constant


@dataclass(frozen=True)
class RegistryEntry:
    """One model version as the registry holds it."""

    model_id: str
    model_version: int
    stage: str
    framework: str
    artifact_uri: str
    artifact_sha256: str
    feature_schema_hash: str
    metrics: dict[str, float]
    params: dict[str, str]
    trained_from_ms: int
    trained_to_ms: int
    created_at_ms: int
    updated_at_ms: int
    stage_changed_by: str = ""
    stage_reason: str = ""

    @property
    def name(self) -> str:
        """``model_id vN``."""
        return f"{self.model_id} v{self.model_version}"

    @property
    def timeframe(self) -> str:
        """The bars this version was trained on (its champion slot is ``(slot, timeframe)``)."""
        return self.params.get("timeframe", "")

    @property
    def slot(self) -> str:
        """The model id naming the slot this version fills or challenges: its own unless shadowed against another."""
        return self.params.get("slot") or self.model_id

    @property
    def label_spec(self) -> LabelSpec:
        """The label definition it was trained on (horizon and dead zone), from its params."""
        return LabelSpec(int(self.params.get("horizon_bars", "1")), float(self.params.get("dead_zone_bps", "0")))

    def moved_to(self, stage: str, actor: str, reason: str, now_ms: int) -> RegistryEntry:
        """Return this entry in ``stage``.

        Raises:
            RegistryError: for a transition outside :data:`TRANSITIONS`.
        """
        if (self.stage, stage) not in TRANSITIONS:
            raise RegistryError(f"{self.name}: {self.stage or 'new'} -> {stage} is not an allowed stage change")
        return replace(self, stage=stage, updated_at_ms=now_ms, stage_changed_by=actor, stage_reason=reason)


@dataclass(frozen=True)
class RegistryEvent:
    """One audited change (or refused promotion) of a model version."""

    model_id: str
    model_version: int
    action: str  # registered, promoted, promotion_refused, retired, rolled_back, restored, shadowed
    from_stage: str
    to_stage: str
    actor: str
    reason: str
    occurred_at_ms: int
    metrics: dict[str, float] = field(default_factory=dict)
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a candidate may replace the champion, why, and the figures compared."""

    is_promoted: bool
    failures: list[str]
    notes: list[str]
    figures: dict[str, float]


def judge_promotion(
    labels: np.ndarray,
    candidate: np.ndarray,
    champion: np.ndarray | None,
    margin: float,
    calibration_bound: float,
    notes: Sequence[str] = (),
    trading: BaselineComparison | None = None,
    min_trades: int = 0,
) -> PromotionDecision:
    """Apply the promotion rules to probabilities on one holdout (rows x 3, class order ``LABELS``).

    Args:
        labels: the holdout's class indices.
        candidate: the candidate's probabilities.
        champion: the champion's probabilities on the same rows, or None (no comparable champion).
        margin: relative log-loss improvement required over the champion.
        calibration_bound: largest expected calibration error allowed for any class.
        notes: context to keep with the decision.
        trading: the candidate's holdout P&L after costs beside the baselines' (None: not judged on P&L).
        min_trades: fewest holdout trades the candidate must make for its P&L to count.
    """
    failures: list[str] = []
    figures: dict[str, float] = {"holdout_rows": float(len(labels))}
    if not len(labels):
        return PromotionDecision(False, ["the holdout has no rows"], list(notes), figures)
    if not np.isfinite(candidate).all():
        return PromotionDecision(False, ["the candidate outputs NaN or infinite probabilities"], list(notes), figures)
    spread = float(np.max(np.std(candidate, axis=0)))
    calibration = max(reliability(labels, candidate, index).error for index in range(candidate.shape[1]))
    candidate_loss = log_loss(labels, candidate)
    figures.update(candidate_log_loss=candidate_loss, candidate_calibration_error=calibration,
                   candidate_probability_std=spread)  # fmt: skip
    if spread < CONSTANT_STD:
        failures.append(f"the candidate's output is constant (largest std across rows {spread:.2g})")
    if calibration > calibration_bound:
        failures.append(f"calibration error {calibration:.3f} exceeds the bound {calibration_bound:g}")
    if trading is not None and not trading.is_judgement:
        # Zeros against zeros (every signal denied, say) compare nothing: no verdict on P&L, so no promotion.
        figures.update(is_pnl_judged=0.0)
        failures.append("no judgement on P&L: the candidate and every baseline placed no order in the engine "
                        "backtest of the holdout (the denials are in the notes)")  # fmt: skip
    elif trading is not None:
        figures.update(trading.figures(), min_trades=float(min_trades), is_pnl_judged=1.0)
        if trading.candidate_trades < min_trades:
            failures.append(f"{trading.candidate_trades} holdout trades, fewer than models.min_trades ({min_trades})")
        for name, pnl in trading.baseline_pnl_account.items():
            if not trading.candidate_pnl_account > pnl:
                failures.append(
                    f"holdout P&L after costs {trading.candidate_pnl_account:.2f} does not beat the {name} "
                    f"baseline's {pnl:.2f}"
                )
    if champion is not None:
        champion_loss = log_loss(labels, champion)
        required = champion_loss * (1.0 - margin)
        figures.update(champion_log_loss=champion_loss, required_log_loss=required)
        if not candidate_loss <= required:
            failures.append(
                f"holdout log loss {candidate_loss:.5f} does not beat the champion's {champion_loss:.5f} "
                f"by the margin {margin:g} (needs <= {required:.5f})"
            )
    return PromotionDecision(not failures, failures, list(notes), figures)


def rollback_target(events: Iterable[RegistryEvent], current: tuple[str, int]) -> tuple[str, int] | None:
    """Return the ``(model_id, version)`` to restore: the latest earlier champion not rolled back since its promotion.

    ``events``: the audit trail of every version of the slot, whatever its model id.
    """
    last_action: dict[tuple[str, int], str] = {}
    promoted_order: list[tuple[str, int]] = []
    for event in sorted(events, key=lambda event: event.occurred_at_ms):
        key = (event.model_id, event.model_version)
        if event.action in ("promoted", "rolled_back"):
            last_action[key] = event.action
        if event.action == "promoted":
            promoted_order.append(key)
    for key in reversed(promoted_order):
        if key != current and last_action.get(key) == "promoted":
            return key
    return None


def contract_mismatches(challenger: RegistryEntry, champion: RegistryEntry) -> list[str]:
    """Return why ``challenger`` cannot be scored beside ``champion`` and compared with it (empty: it can).

    Both must score the same vectors (timeframe and feature schema: the flow serves one
    feature set) and be judged against the same labels (horizon and dead zone), on at
    least one symbol in common. The framework and the model id may differ.
    """
    mismatches = []
    if challenger.timeframe != champion.timeframe:
        mismatches.append(f"timeframe {challenger.timeframe} != the champion's {champion.timeframe}")
    if challenger.feature_schema_hash != champion.feature_schema_hash:
        mismatches.append(f"feature schema {challenger.feature_schema_hash} != the champion's "
                          f"{champion.feature_schema_hash}")  # fmt: skip
    if challenger.label_spec != champion.label_spec:
        mismatches.append(f"labels {challenger.label_spec.describe()} != the champion's "
                          f"{champion.label_spec.describe()}")  # fmt: skip
    mine = set(challenger.params.get("symbols", "").split(",")) - {""}
    theirs = set(champion.params.get("symbols", "").split(",")) - {""}
    if not mine & theirs:
        mismatches.append(f"no symbol in common with the champion's ({','.join(sorted(theirs))})")
    return mismatches


class ModelRegistry:
    """Registry rows in the warehouse and artifacts in the state dir's store."""

    def __init__(
        self,
        settings: Settings,
        client: Client | None = None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        """Use ``client`` (default: a new warehouse connection) and the state dir's artifact store."""
        if client is None:
            from tickwave.warehouse.client import connect

            client = connect(settings)
        self.settings = settings
        self.client = client
        self.store = ArtifactStore(settings.state_path / "models")
        self._clock_ms = clock_ms
        self._last_ms = 0

    def close(self) -> None:
        """Close the warehouse connection."""
        self.client.close()

    def _now_ms(self) -> int:
        # Strictly increasing, so a later change of the same row always wins under FINAL.
        self._last_ms = max(self._clock_ms(), self._last_ms + 1)
        return self._last_ms

    # -- reading --------------------------------------------------------------------------

    def entries(self, model_id: str | None = None) -> list[RegistryEntry]:
        """Return every version (of ``model_id``, or of all models), newest first."""
        where = "WHERE model_id = {model_id:String}" if model_id else ""
        columns = ", ".join(
            f"toUnixTimestamp64Milli({name}) AS {name}" if name.endswith("_ms") else name
            for name in MODEL_REGISTRY.column_names
        )
        result = self.client.query(
            f"SELECT {columns} FROM model_registry FINAL {where} ORDER BY model_id, model_version DESC",  # noqa: S608
            parameters={"model_id": model_id or ""},
        )
        return [
            RegistryEntry(**{**row, "metrics": dict(row["metrics"]), "params": dict(row["params"]),
                             "model_version": int(row["model_version"])})
            for row in result.named_results()
        ]  # fmt: skip

    def entry(self, model_id: str, version: int) -> RegistryEntry:
        """Return one version.

        Raises:
            RegistryError: when it is not registered.
        """
        for candidate in self.entries(model_id):
            if candidate.model_version == version:
                return candidate
        raise RegistryError(f"{model_id} v{version} is not registered (see `tickwave models list`)")

    def champion(self, slot: str | None, timeframe: str | None = None) -> RegistryEntry | None:
        """Return the champion of the slot ``(slot, timeframe)`` (the latest promoted, should two claim it), or None.

        ``slot`` is a model id; the champion may be a version of another model id that was
        shadowed against it and promoted. ``slot=None``: any slot; ``timeframe=None``: the
        champion of any timeframe promoted last.
        """
        champions = [entry for entry in self.slot_entries(slot)
                     if entry.stage == CHAMPION and timeframe in (None, entry.timeframe)]  # fmt: skip
        return max(champions, key=lambda entry: entry.updated_at_ms) if champions else None

    def slot_entries(self, slot: str | None, timeframe: str | None = None) -> list[RegistryEntry]:
        """Return every version in the slots ``slot`` names (of any model id; ``None``: every slot), newest first."""
        return [entry for entry in self.entries()
                if slot in (None, entry.slot) and timeframe in (None, entry.timeframe)]  # fmt: skip

    def events(self, model_id: str) -> list[RegistryEvent]:
        """Return the audit trail of ``model_id``, oldest first."""
        result = self.client.query(
            "SELECT event_id, model_id, model_version, action, from_stage, to_stage, actor, reason, metrics, "
            "toUnixTimestamp64Milli(occurred_at_ms) AS occurred_at_ms FROM model_registry_events FINAL "
            "WHERE model_id = {model_id:String} ORDER BY occurred_at_ms, event_id",
            parameters={"model_id": model_id},
        )
        return [
            RegistryEvent(**{**row, "metrics": dict(row["metrics"]), "model_version": int(row["model_version"])})
            for row in result.named_results()
        ]

    def artifact(self, entry: RegistryEntry) -> ModelArtifact:
        """Return the servable artifact of ``entry`` (bytes checked against their SHA-256)."""
        return artifact_from_onnx(entry.model_id, entry.model_version, self.store.read(entry.artifact_sha256))

    # -- writing --------------------------------------------------------------------------

    def _write(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        with BatchWriter(self.client, table) as writer:
            writer.write(rows)

    def _commit(self, entries: Sequence[RegistryEntry], events: Sequence[RegistryEvent]) -> None:
        # The registry rows first (what serves), then their audit rows.
        if entries:
            self._write(MODEL_REGISTRY, [entry.__dict__ for entry in entries])
        if events:
            self._write(MODEL_REGISTRY_EVENTS, [event.__dict__ for event in events])
        for event in events:
            logger.info("model=%s version=%d %s (%s -> %s) by %s: %s", event.model_id, event.model_version,
                        event.action, event.from_stage or "new", event.to_stage, event.actor, event.reason)  # fmt: skip

    def register(self, saved: SavedModel, result: TrainingResult[Any], actor: str) -> RegistryEntry:
        """Record a stored artifact as the next candidate version of its model id."""
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
            version = self._next_version(saved.model_id)
            now = self._now_ms()
            entry = RegistryEntry(
                model_id=saved.model_id, model_version=version, stage=CANDIDATE, framework=saved.framework,
                artifact_uri=saved.artifact_uri, artifact_sha256=saved.sha256,
                feature_schema_hash=dataset.schema_hash, metrics=result.metrics(), params=params,
                trained_from_ms=dataset.from_ms, trained_to_ms=dataset.to_ms, created_at_ms=now, updated_at_ms=now,
                stage_changed_by=actor, stage_reason="trained",
            )  # fmt: skip
            self._commit([entry], [])
            stored = self.entry(saved.model_id, version)
            if stored.created_at_ms == now and stored.artifact_sha256 == saved.sha256:
                self._commit([], [RegistryEvent(saved.model_id, version, "registered", "", CANDIDATE, actor,
                                                f"artifact {saved.sha256[:12]}", now, entry.metrics)])  # fmt: skip
                return stored
            logger.warning("model=%s version=%d taken by a concurrent registration; retrying", saved.model_id, version)
        raise RegistryError(f"could not allocate a version of {saved.model_id}: too many concurrent registrations")

    def _next_version(self, model_id: str) -> int:
        latest = self.client.command(
            "SELECT max(model_version) FROM model_registry WHERE model_id = {model_id:String}",
            parameters={"model_id": model_id},
        )
        return int(str(latest or 0)) + 1

    def holdout_for(self, entry: RegistryEntry) -> Dataset:
        """Rebuild the candidate's holdout from the warehouse (its symbols, timeframe, range and labels).

        Raises:
            NotEnoughDataError: when the warehouse no longer holds rows in that range.
        """
        from tickwave.errors import ConfigurationError

        params = entry.params
        try:
            symbols = params["symbols"].split(",")
            range_ms = (int(params["holdout_from_ms"]), int(params["holdout_to_ms"]))
            label_spec = LabelSpec(int(params["horizon_bars"]), float(params["dead_zone_bps"]))
            timeframe = params["timeframe"]
        except (KeyError, ValueError) as exc:
            raise ConfigurationError(f"{entry.name} lacks the holdout description in its params: {exc}") from exc
        names = self.artifact(entry).feature_names
        features = query_features(self.client, symbols, timeframe, range_ms, names)
        bars = query_bars(self.client, symbols, timeframe, range_ms)
        return build_dataset(features, bars, names, entry.feature_schema_hash, label_spec, timeframe, range_ms,
                             min_rows=1, require_classes=False)  # fmt: skip

    def evaluate(self, candidate: RegistryEntry, holdout: Dataset) -> PromotionDecision:
        """Judge ``candidate`` against its slot's champion on ``holdout``, through the served ONNX models."""
        champion = self.champion(candidate.slot, candidate.timeframe)
        features = holdout.features
        candidate_probabilities = ServingModel(self.artifact(candidate), holdout.schema_hash).predict_batch(features)
        champion_probabilities = None
        notes: list[str] = []
        if champion is None:
            notes.append("no champion yet: judged by the sanity checks alone")
        elif champion.name == candidate.name:
            notes.append("the candidate is the champion")
        elif champion.feature_schema_hash != holdout.schema_hash:
            notes.append(
                f"champion {champion.name} uses feature schema {champion.feature_schema_hash}, the candidate "
                f"{holdout.schema_hash}: not comparable on the same features, judged by the sanity checks alone"
            )
        else:
            champion_model = ServingModel(self.artifact(champion), holdout.schema_hash)
            champion_probabilities = champion_model.predict_batch(features)
            notes.append(f"compared with champion {champion.name} on {len(holdout)} holdout rows")
            if champion.trained_to_ms > int(holdout.times_ms.min()):
                notes.append(f"champion {champion.name} was trained on data overlapping the holdout (favours it)")
        models, streams = self.settings.models, self.settings.streams
        trading = None
        if models.baselines:
            # Through the live execution engine (sizing, gate, paper costs); the vectorised P&L rides along.
            trading = compare_on_engine(
                holdout.frame, candidate_probabilities.astype(np.float64),
                SignalRules(streams.entry_probability, streams.min_edge), self.settings, holdout.timeframe,
                models.baselines, candidate.model_id, candidate.model_version,
            )  # fmt: skip
            notes.extend(trading.notes)
        else:
            notes.append("no baselines configured (models.baselines): not judged on P&L")
        return judge_promotion(
            holdout.labels, candidate_probabilities.astype(np.float64),
            None if champion_probabilities is None else champion_probabilities.astype(np.float64),
            models.promotion_margin, models.calibration_bound, notes, trading, models.min_trades,
        )  # fmt: skip

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
        decision = self.evaluate(candidate, holdout if holdout is not None else self.holdout_for(candidate))
        decision = self._judged_in_shadow(candidate, decision)
        now = self._now_ms()
        reason = "; ".join(decision.notes + decision.failures)
        if not decision.is_promoted:
            self._commit([], [RegistryEvent(model_id, version, "promotion_refused", candidate.stage, candidate.stage,
                                            actor, reason, now, decision.figures)])  # fmt: skip
            raise PromotionRefused(model_id, version, decision.failures, decision.notes, decision.figures)
        champions = [entry for entry in self.slot_entries(candidate.slot, candidate.timeframe)
                     if entry.stage == CHAMPION]  # fmt: skip
        entries = [candidate.moved_to(CHAMPION, actor, reason, now)]
        events = [RegistryEvent(model_id, version, "promoted", candidate.stage, CHAMPION, actor, reason, now,
                                decision.figures)]  # fmt: skip
        for old in champions:
            replaced = f"replaced by {candidate.name}"
            entries.append(old.moved_to(RETIRED, actor, replaced, now))
            events.append(RegistryEvent(old.model_id, old.model_version, "retired", CHAMPION, RETIRED, actor,
                                        replaced, now))  # fmt: skip
        self._commit(entries, events)
        return decision

    def _judged_in_shadow(self, candidate: RegistryEntry, decision: PromotionDecision) -> PromotionDecision:
        # The live shadow comparison with the champion, when there is one to compare with: its figures are
        # always recorded; with models.shadow_min_days > 0 its criteria must pass too.
        from models.shadow import NO_SHADOW, compare_live, judge_shadow

        min_days = self.settings.models.shadow_min_days
        champion = self.champion(candidate.slot, candidate.timeframe)
        notes = list(decision.notes)
        if champion is None or champion.name == candidate.name:
            comparison = NO_SHADOW
            if min_days > 0:
                notes.append("no champion to compare with on live data: models.shadow_min_days does not apply")
                min_days = 0
        else:
            comparison = compare_live(
                self.client, (candidate.model_id, candidate.model_version), (champion.model_id, champion.model_version),
                candidate.timeframe, candidate.params.get("symbols", "").split(","), candidate.label_spec,
                self._clock_ms(),
            )  # fmt: skip
            if comparison.rows or candidate.stage == CHALLENGER or min_days > 0:
                notes.append(f"live shadow comparison with champion {champion.name}: {comparison.rows} shared "
                             f"labelled predictions over {comparison.days:.2f} days (models.shadow_min_days "
                             f"{min_days:g})")  # fmt: skip
        failures, figures = judge_shadow(comparison, min_days)
        return PromotionDecision(decision.is_promoted and not failures, decision.failures + failures, notes,
                                 {**decision.figures, **figures})  # fmt: skip

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
                contract differs from the champion's (:func:`contract_mismatches`).
        """
        entry = self.entry(model_id, version)
        slot = against or entry.slot
        champion = self.champion(slot, entry.timeframe)
        if champion is None and slot != model_id:
            raise RegistryError(f"{slot} has no {entry.timeframe} champion for {entry.name} to challenge "
                                "(see `tickwave models list --all`)")  # fmt: skip
        if champion is not None and champion.name != entry.name:
            mismatches = contract_mismatches(entry, champion)
            if mismatches:
                raise RegistryError(f"{entry.name} cannot challenge {champion.name}: " + "; ".join(mismatches))
        params = {key: value for key, value in entry.params.items() if key != "slot"}
        if slot != model_id:
            params["slot"] = slot
        now = self._now_ms()
        beside = f"champion {champion.name}" if champion is not None and champion.name != entry.name else "champion"
        reason = (f"scored in shadow beside the {entry.timeframe} {beside} (slot {slot}); its predictions are never "
                  "traded")  # fmt: skip
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
        events = [event for version_id in sorted({entry.model_id for entry in same_slot.values()})
                  for event in self.events(version_id)
                  if f"{event.model_id} v{event.model_version}" in same_slot]  # fmt: skip
        target_key = rollback_target(events, (current.model_id, current.model_version))
        if target_key is None:
            raise RegistryError(f"{current.name} is the only champion {model_id} has had: nothing to roll back to")
        target = same_slot[f"{target_key[0]} v{target_key[1]}"]
        now = self._now_ms()
        restored_reason = f"restored by rolling back {current.name}: {reason}"
        self._commit(
            [current.moved_to(RETIRED, actor, reason, now), target.moved_to(CHAMPION, actor, restored_reason, now)],
            [RegistryEvent(current.model_id, current.model_version, "rolled_back", CHAMPION, RETIRED, actor, reason,
                           now),
             RegistryEvent(target.model_id, target.model_version, "restored", target.stage, CHAMPION, actor,
                           restored_reason, now)],
        )  # fmt: skip
        return self.entry(target.model_id, target.model_version)
