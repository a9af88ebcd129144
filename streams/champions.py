"""The champion lookup the dataflow serves from: registry rows in the warehouse, artifacts in the state dir.

``RegistryModelProvider`` is the streams' ``ModelProvider``. Each call reads the
champion and challenger rows of the slots its model ids name (``model_registry FINAL``,
stages ``champion`` and ``challenger``; a row's slot is ``params['slot']``, or its own
model id when unset) and keeps, per ``(slot, timeframe)``, the champion promoted last (the
only one whose signals trade) and every challenger, whatever its model id (served with
``role == "challenger"``: scored in shadow, never traded); it loads an artifact only when
a slot's version or hash changes, checks the bytes against their SHA-256, and keeps serving what it loaded before while
the warehouse or the store is unavailable (logged).

It lives in the core because the trainer (``models/``) writes what the dataflow
(``streams/``) reads, and neither component may import the other.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tickwave.config import Settings
from tickwave.errors import DataQualityError, TickwaveError
from tickwave.modeling import CHALLENGER, CHAMPION, ModelArtifact, artifact_from_onnx, serving_key

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger(__name__)


def sha256_of(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def read_checked(path: Path, sha256: str) -> bytes:
    """Return the bytes of ``path``, checked against ``sha256``.

    Raises:
        FileNotFoundError: when the file is missing.
        DataQualityError: when its content no longer matches its hash.
    """
    data = path.read_bytes()
    if sha256_of(data) != sha256:
        raise DataQualityError(f"artifact {path} does not match its SHA-256: refusing to load it")
    return data


@dataclass(frozen=True)
class ChampionRow:
    """One served row of the registry: the version that fills the slot ``(slot, timeframe)``, or a challenger of it."""

    model_id: str
    model_version: int
    timeframe: str
    artifact_sha256: str
    updated_at_ms: int
    stage: str = CHAMPION  # or CHALLENGER
    slot: str = ""  # the model id naming the slot; "" = its own

    @property
    def key(self) -> tuple[str, str]:
        """The slot: ``(slot, timeframe)``."""
        return (self.slot or self.model_id, self.timeframe)

    @property
    def serving_key(self) -> tuple[str, ...]:
        """Where the flow keeps this row's model (:func:`tickwave.modeling.serving_key`)."""
        return serving_key(self.model_id, self.timeframe, self.stage, self.model_version, self.slot)


def latest_champions(rows: Iterable[ChampionRow]) -> list[ChampionRow]:
    """Return one champion per ``(slot, timeframe)`` (the latest promoted, should two claim it); challengers."""
    best: dict[tuple[str, ...], ChampionRow] = {}
    for row in rows:
        current = best.get(row.serving_key)
        if current is None or (row.updated_at_ms, row.model_version) > (current.updated_at_ms, current.model_version):
            best[row.serving_key] = row
    return [best[key] for key in sorted(best, key=lambda key: (len(key), key))]


class ChampionSource(Protocol):
    """Where champion rows and their artifacts come from (the warehouse and the state dir in production)."""

    def rows(self, model_ids: Sequence[str]) -> list[ChampionRow]:
        """Return the champion and challenger rows of the slots ``model_ids`` name."""

    def artifact(self, row: ChampionRow) -> ModelArtifact:
        """Return the servable artifact of ``row``."""

    def close(self) -> None:
        """Release connections."""


class WarehouseChampions:
    """Champion rows from ``model_registry`` and artifacts from ``<state_dir>/models``."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        """Use ``client`` (default: a new warehouse connection)."""
        if client is None:
            from adapters.warehouse.client import connect

            client = connect(settings)
        self.client = client
        self.root = settings.state_path / "models"

    def rows(self, model_ids: Sequence[str]) -> list[ChampionRow]:
        """Return the champion and challenger rows of the slots ``model_ids`` name (timeframe and slot from params).

        A challenger of another model id is in its champion's slot (``params['slot']``).
        """
        result = self.client.query(
            "SELECT model_id, model_version, params['timeframe'] AS timeframe, artifact_sha256, "
            "toUnixTimestamp64Milli(updated_at_ms) AS updated_at_ms, stage, "
            "if(params['slot'] = '', model_id, params['slot']) AS slot FROM model_registry FINAL "
            "WHERE stage IN {stages:Array(String)} AND slot IN {ids:Array(String)}",
            parameters={"stages": [CHAMPION, CHALLENGER], "ids": list(model_ids)},
        )
        return [
            ChampionRow(
                str(row["model_id"]),
                int(row["model_version"]),
                str(row["timeframe"]),
                str(row["artifact_sha256"]),
                int(row["updated_at_ms"]),
                str(row["stage"]),
                str(row["slot"]),
            )
            for row in result.named_results()
        ]

    def artifact(self, row: ChampionRow) -> ModelArtifact:
        """Return the artifact of ``row`` in its role, its bytes checked against the row's SHA-256."""
        data = read_checked(self.root / f"{row.artifact_sha256}.onnx", row.artifact_sha256)
        return replace(artifact_from_onnx(row.model_id, row.model_version, data), role=row.stage, slot=row.slot)

    def close(self) -> None:
        """Close the warehouse connection."""
        self.client.close()


class RegistryModelProvider:
    """The streams' ``ModelProvider``: the champion of each slot its model ids name (one per timeframe), challengers."""

    def __init__(
        self,
        settings: Settings,
        model_ids: Sequence[str] | None = None,
        client: Client | None = None,
        source: ChampionSource | None = None,
    ) -> None:
        """Serve the slots ``model_ids`` name (default ``[models.registry_id]``); connect lazily on the first poll."""
        self.settings = settings
        self.model_ids = tuple(model_ids or (settings.models.registry_id,))
        self._client = client
        self._source = source
        self._loaded: dict[tuple[str, ...], tuple[int, str, ModelArtifact]] = {}

    def champions(self) -> list[ModelArtifact]:
        """Return the current champions and challengers; on a warehouse or store failure, those loaded before."""
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            if self._source is None:
                self._source = WarehouseChampions(self.settings, self._client)
            rows = latest_champions(self._source.rows(self.model_ids))
        except (ClickHouseError, OSError, TickwaveError) as exc:
            logger.warning(
                "models=%s registry unavailable (%s); keeping the models loaded before", ",".join(self.model_ids), exc
            )
            return [loaded[2] for loaded in self._loaded.values()]
        loaded: dict[tuple[str, ...], tuple[int, str, ModelArtifact]] = {}
        for row in rows:
            before = self._loaded.get(row.serving_key)
            if before is not None and before[:2] == (row.model_version, row.artifact_sha256):
                loaded[row.serving_key] = before
                continue
            try:
                artifact = self._source.artifact(row)
            except (OSError, TickwaveError) as exc:
                logger.warning(
                    "model=%s version=%d timeframe=%s could not be loaded (%s); keeping the one before",
                    row.model_id,
                    row.model_version,
                    row.timeframe,
                    exc,
                )
                if before is not None:
                    loaded[row.serving_key] = before
                continue
            loaded[row.serving_key] = (row.model_version, row.artifact_sha256, artifact)
            logger.info(
                "model=%s version=%d timeframe=%s %s loaded from the registry",
                row.model_id,
                row.model_version,
                row.timeframe,
                row.stage,
            )
        self._loaded = loaded
        return [entry[2] for entry in loaded.values()]

    def close(self) -> None:
        """Close the registry's warehouse connection."""
        if self._source is not None:
            self._source.close()
