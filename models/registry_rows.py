"""The registry's rows: a model version (``RegistryEntry``), an audited change (``RegistryEvent``), the stages.

A version's stage moves only along :data:`TRANSITIONS`; ``RegistryEntry.moved_to`` refuses
anything else. Plain frozen records: the registry's reads, writes and rules all use them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from models.dataset import LabelSpec
from models.errors import RegistryError
from tickwave.modeling import CHALLENGER, CHAMPION

CANDIDATE, RETIRED = "candidate", "retired"
TRANSITIONS = frozenset(
    {
        ("", CANDIDATE),
        (CANDIDATE, CHAMPION),
        (RETIRED, CHAMPION),
        (CHAMPION, RETIRED),
        (CANDIDATE, CHALLENGER),
        (RETIRED, CHALLENGER),
        (CHALLENGER, CHAMPION),
        (CHALLENGER, RETIRED),
    }
)


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
