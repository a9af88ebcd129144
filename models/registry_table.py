"""The registry's warehouse table: reads and lookups of versions and audit events, and their writes.

``model_registry`` holds one current row per model id and version (read with FINAL: the
row with the latest ``updated_at_ms`` wins); ``model_registry_events`` holds the audit
trail. Times come from the injected :class:`tickwave.clock.Clock`, made strictly
increasing here so a later change of the same row always wins under FINAL.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from adapters.warehouse.writer import BatchWriter
from models.errors import RegistryError
from models.registry_rows import RegistryEntry, RegistryEvent
from models.store import ArtifactStore
from tickwave.clock import Clock
from tickwave.modeling import CHAMPION, ModelArtifact, artifact_from_onnx
from tickwave.warehouse.tables import MODEL_REGISTRY, MODEL_REGISTRY_EVENTS, Table

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger(__name__)


class RegistryTable:
    """Versions and audit events in the warehouse, artifacts in the store, times from the clock."""

    def __init__(self, client: Client, store: ArtifactStore, clock: Clock) -> None:
        """Read and write through ``client``; read artifacts from ``store``; tell the time by ``clock``."""
        self.client = client
        self.store = store
        self.clock = clock
        self._last_ms = 0

    def now_ms(self) -> int:
        """Return the clock's time, strictly after the last one returned (a later change always wins)."""
        self._last_ms = max(self.clock.now_ms(), self._last_ms + 1)
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
            RegistryEntry(
                **{
                    **row,
                    "metrics": dict(row["metrics"]),
                    "params": dict(row["params"]),
                    "model_version": int(row["model_version"]),
                }
            )
            for row in result.named_results()
        ]

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
        champions = [
            entry
            for entry in self.slot_entries(slot)
            if entry.stage == CHAMPION and timeframe in (None, entry.timeframe)
        ]
        return max(champions, key=lambda entry: entry.updated_at_ms) if champions else None

    def slot_entries(self, slot: str | None, timeframe: str | None = None) -> list[RegistryEntry]:
        """Return every version in the slots ``slot`` names (of any model id; ``None``: every slot), newest first."""
        return [
            entry for entry in self.entries() if slot in (None, entry.slot) and timeframe in (None, entry.timeframe)
        ]

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

    def next_version(self, model_id: str) -> int:
        """Return the version number after the highest ``model_id`` has (1 for a new model id)."""
        latest = self.client.command(
            "SELECT max(model_version) FROM model_registry WHERE model_id = {model_id:String}",
            parameters={"model_id": model_id},
        )
        return int(str(latest or 0)) + 1

    # -- writing --------------------------------------------------------------------------

    def _write(self, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
        with BatchWriter(self.client, table) as writer:
            writer.write(rows)

    def commit(self, entries: Sequence[RegistryEntry], events: Sequence[RegistryEvent]) -> None:
        """Write ``entries`` (what serves) first, then their audit ``events``; log each event."""
        if entries:
            self._write(MODEL_REGISTRY, [entry.__dict__ for entry in entries])
        if events:
            self._write(MODEL_REGISTRY_EVENTS, [event.__dict__ for event in events])
        for event in events:
            logger.info(
                "model=%s version=%d %s (%s -> %s) by %s: %s",
                event.model_id,
                event.model_version,
                event.action,
                event.from_stage or "new",
                event.to_stage,
                event.actor,
                event.reason,
            )
