"""RegistryModelProvider's behaviour when the registry answers, changes or fails (a stub registry)."""

from __future__ import annotations

from pathlib import Path

from clickhouse_connect.driver.exceptions import OperationalError

from models.registry import CHAMPION, RegistryEntry, RegistryModelProvider
from streams.inference import ModelArtifact
from tickwave.config import load_settings
from tickwave.errors import DataQualityError


def entry(version: int) -> RegistryEntry:
    return RegistryEntry("m", version, CHAMPION, "xgboost", "models/x.onnx", f"{version:064d}", "h", {}, {}, 0, 1, 2, 2)


class StubRegistry:
    """Answers ``champion`` from a script of results; counts artifact loads."""

    def __init__(self, answers: list[RegistryEntry | Exception | None]) -> None:
        self.answers = answers
        self.loads = 0

    def champion(self, model_id: str) -> RegistryEntry | None:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def artifact(self, found: RegistryEntry) -> ModelArtifact:
        self.loads += 1
        if found.model_version == 9:
            raise DataQualityError("artifact does not match its SHA-256")
        return ModelArtifact("m", found.model_version, b"onnx", ("a",), "h", ("down", "flat", "up"))

    def close(self) -> None:
        pass


def provider_with(stub: StubRegistry, tmp_path: Path) -> RegistryModelProvider:
    provider = RegistryModelProvider(load_settings(state_dir=tmp_path, models={"model_id": "m"}))
    provider._registry = stub  # type: ignore[assignment]
    return provider


def test_provider_when_champion_unchanged_then_artifact_loaded_once(tmp_path: Path) -> None:
    stub = StubRegistry([entry(1), entry(1), entry(1)])
    provider = provider_with(stub, tmp_path)

    served = [provider.champion() for _ in range(3)]

    assert [artifact.model_version for artifact in served if artifact] == [1, 1, 1]
    assert stub.loads == 1


def test_provider_when_warehouse_fails_then_keeps_serving_the_last_champion(tmp_path: Path) -> None:
    stub = StubRegistry([entry(1), OperationalError("connection refused"), entry(2)])
    provider = provider_with(stub, tmp_path)

    first, during_outage, after = provider.champion(), provider.champion(), provider.champion()

    assert first is not None and during_outage is first
    assert after is not None and after.model_version == 2


def test_provider_when_new_artifact_is_corrupt_then_keeps_the_previous_one(tmp_path: Path) -> None:
    stub = StubRegistry([entry(1), entry(9)])
    provider = provider_with(stub, tmp_path)

    first, second = provider.champion(), provider.champion()

    assert first is not None and second is first


def test_provider_when_champion_removed_then_none(tmp_path: Path) -> None:
    stub = StubRegistry([entry(1), None])
    provider = provider_with(stub, tmp_path)

    assert provider.champion() is not None
    assert provider.champion() is None
