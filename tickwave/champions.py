"""The champion lookup the dataflow serves from: registry rows in the warehouse, artifacts in the state dir.

``RegistryModelProvider`` is the streams' ``ModelProvider``. Each call reads the
champion rows of its model ids (``model_registry FINAL``, stage ``champion``) and keeps,
per ``(model_id, timeframe)``, the one promoted last; it loads an artifact only when a
slot's version or hash changes, checks the bytes against their SHA-256, and keeps
serving what it loaded before while the warehouse or the store is unavailable (logged).

It lives in the core because the trainer (``models/``) writes what the dataflow
(``streams/``) reads, and neither component may import the other.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from tickwave.config import Settings
from tickwave.errors import DataQualityError, TickwaveError
from tickwave.modeling import ModelArtifact, artifact_from_onnx

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger(__name__)

CHAMPION = "champion"


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
    """One champion row of the registry: which version fills the slot ``(model_id, timeframe)``."""

    model_id: str
    model_version: int
    timeframe: str
    artifact_sha256: str
    updated_at_ms: int

    @property
    def key(self) -> tuple[str, str]:
        """The slot: ``(model_id, timeframe)``."""
        return (self.model_id, self.timeframe)


def latest_champions(rows: Iterable[ChampionRow]) -> list[ChampionRow]:
    """Return one row per ``(model_id, timeframe)``: the latest promoted, should two claim the slot."""
    best: dict[tuple[str, str], ChampionRow] = {}
    for row in rows:
        current = best.get(row.key)
        if current is None or (row.updated_at_ms, row.model_version) > (current.updated_at_ms, current.model_version):
            best[row.key] = row
    return [best[key] for key in sorted(best)]


class ChampionSource(Protocol):
    """Where champion rows and their artifacts come from (the warehouse and the state dir in production)."""

    def rows(self, model_ids: Sequence[str]) -> list[ChampionRow]:
        """Return the champion rows of ``model_ids``."""

    def artifact(self, row: ChampionRow) -> ModelArtifact:
        """Return the servable artifact of ``row``."""

    def close(self) -> None:
        """Release connections."""


class WarehouseChampions:
    """Champion rows from ``model_registry`` and artifacts from ``<state_dir>/models``."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        """Use ``client`` (default: a new warehouse connection)."""
        if client is None:
            from tickwave.warehouse.client import connect

            client = connect(settings)
        self.client = client
        self.root = settings.state_path / "models"

    def rows(self, model_ids: Sequence[str]) -> list[ChampionRow]:
        """Return the champion rows of ``model_ids`` (their timeframe from the row's params)."""
        result = self.client.query(
            "SELECT model_id, model_version, params['timeframe'] AS timeframe, artifact_sha256, "
            "toUnixTimestamp64Milli(updated_at_ms) AS updated_at_ms FROM model_registry FINAL "
            "WHERE stage = {stage:String} AND model_id IN {ids:Array(String)}",
            parameters={"stage": CHAMPION, "ids": list(model_ids)},
        )
        return [
            ChampionRow(str(row["model_id"]), int(row["model_version"]), str(row["timeframe"]),
                        str(row["artifact_sha256"]), int(row["updated_at_ms"]))
            for row in result.named_results()
        ]  # fmt: skip

    def artifact(self, row: ChampionRow) -> ModelArtifact:
        """Return the artifact of ``row``, its bytes checked against the row's SHA-256."""
        data = read_checked(self.root / f"{row.artifact_sha256}.onnx", row.artifact_sha256)
        return artifact_from_onnx(row.model_id, row.model_version, data)

    def close(self) -> None:
        """Close the warehouse connection."""
        self.client.close()


class RegistryModelProvider:
    """The streams' ``ModelProvider``: every champion of its model ids, one per timeframe."""

    def __init__(
        self,
        settings: Settings,
        model_ids: Sequence[str] | None = None,
        client: Client | None = None,
        source: ChampionSource | None = None,
    ) -> None:
        """Serve ``model_ids`` (default ``[models.model_id]``); connect lazily on the first poll."""
        self.settings = settings
        self.model_ids = tuple(model_ids or (settings.models.model_id,))
        self._client = client
        self._source = source
        self._loaded: dict[tuple[str, str], tuple[int, str, ModelArtifact]] = {}

    def champions(self) -> list[ModelArtifact]:
        """Return the current champions; on a warehouse or store failure, those loaded before (logged)."""
        from clickhouse_connect.driver.exceptions import ClickHouseError

        try:
            if self._source is None:
                self._source = WarehouseChampions(self.settings, self._client)
            rows = latest_champions(self._source.rows(self.model_ids))
        except (ClickHouseError, OSError, TickwaveError) as exc:
            logger.warning("models=%s registry unavailable (%s); keeping the models loaded before",
                           ",".join(self.model_ids), exc)  # fmt: skip
            return [loaded[2] for loaded in self._loaded.values()]
        loaded: dict[tuple[str, str], tuple[int, str, ModelArtifact]] = {}
        for row in rows:
            before = self._loaded.get(row.key)
            if before is not None and before[:2] == (row.model_version, row.artifact_sha256):
                loaded[row.key] = before
                continue
            try:
                artifact = self._source.artifact(row)
            except (OSError, TickwaveError) as exc:
                logger.warning("model=%s version=%d timeframe=%s could not be loaded (%s); keeping the one before",
                               row.model_id, row.model_version, row.timeframe, exc)  # fmt: skip
                if before is not None:
                    loaded[row.key] = before
                continue
            loaded[row.key] = (row.model_version, row.artifact_sha256, artifact)
            logger.info("model=%s version=%d timeframe=%s champion loaded from the registry", row.model_id,
                        row.model_version, row.timeframe)  # fmt: skip
        self._loaded = loaded
        return [entry[2] for entry in loaded.values()]

    def close(self) -> None:
        """Close the registry's warehouse connection."""
        if self._source is not None:
            self._source.close()
