"""RegistryModelProvider's behaviour when the registry answers, changes or fails (a stub champion source)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from clickhouse_connect.driver.exceptions import OperationalError

from streams.champions import ChampionRow, RegistryModelProvider, latest_champions
from tickwave.config import load_settings
from tickwave.errors import DataQualityError
from tickwave.modeling import CHALLENGER, CHAMPION, ModelArtifact


def row(version: int, timeframe: str = "1m", updated_at_ms: int = 2) -> ChampionRow:
    return ChampionRow("m", version, timeframe, f"{version:064d}", updated_at_ms)


class StubSource:
    """Answers ``rows`` from a script of results; counts artifact loads."""

    def __init__(self, answers: list[list[ChampionRow] | Exception]) -> None:
        self.answers = answers
        self.loads = 0

    def rows(self, model_ids: object) -> list[ChampionRow]:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def artifact(self, found: ChampionRow) -> ModelArtifact:
        self.loads += 1
        if found.model_version == 9:
            raise DataQualityError("artifact does not match its SHA-256")
        return ModelArtifact(
            "m", found.model_version, b"onnx", ("a",), "h", ("down", "flat", "up"), found.timeframe, ("EURUSD",)
        )

    def close(self) -> None:
        pass


def provider_with(stub: StubSource, tmp_path: Path) -> RegistryModelProvider:
    return RegistryModelProvider(load_settings(state_dir=tmp_path, models={"model_id": "m"}), source=stub)


def versions(artifacts: list[ModelArtifact]) -> list[tuple[str, int]]:
    return sorted((artifact.timeframe, artifact.model_version) for artifact in artifacts)


def test_provider_when_champion_unchanged_then_artifact_loaded_once(tmp_path: Path) -> None:
    stub = StubSource([[row(1)], [row(1)], [row(1)]])
    provider = provider_with(stub, tmp_path)

    served = [provider.champions() for _ in range(3)]

    assert [versions(artifacts) for artifacts in served] == [[("1m", 1)]] * 3
    assert stub.loads == 1


def test_provider_when_warehouse_fails_then_keeps_serving_the_last_champions(tmp_path: Path) -> None:
    stub = StubSource([[row(1)], OperationalError("connection refused"), [row(2)]])
    provider = provider_with(stub, tmp_path)

    first, during_outage, after = provider.champions(), provider.champions(), provider.champions()

    assert versions(first) == versions(during_outage) == [("1m", 1)] and during_outage[0] is first[0]
    assert versions(after) == [("1m", 2)]


def test_provider_when_new_artifact_is_corrupt_then_keeps_the_previous_one(tmp_path: Path) -> None:
    stub = StubSource([[row(1)], [row(9)]])
    provider = provider_with(stub, tmp_path)

    first, second = provider.champions(), provider.champions()

    assert second == first and versions(second) == [("1m", 1)]


def test_provider_when_champion_removed_then_none(tmp_path: Path) -> None:
    stub = StubSource([[row(1)], []])
    provider = provider_with(stub, tmp_path)

    assert provider.champions()
    assert provider.champions() == []


def test_provider_when_champions_on_two_timeframes_then_one_each(tmp_path: Path) -> None:
    stub = StubSource([[row(1, "1m"), row(2, "5m"), row(3, "1m", updated_at_ms=5)]])
    provider = provider_with(stub, tmp_path)

    assert versions(provider.champions()) == [("1m", 3), ("5m", 2)]


def test_latest_champions_when_two_claim_a_slot_then_the_latest_promoted() -> None:
    rows = [row(4, "1m", 10), row(5, "1m", 9), row(6, "1s", 1)]

    assert [(r.timeframe, r.model_version) for r in latest_champions(rows)] == [("1m", 4), ("1s", 6)]


def test_latest_champions_when_a_slot_has_challengers_then_one_champion_and_every_challenger_kept() -> None:
    rows = [
        row(1, updated_at_ms=1),
        row(2, updated_at_ms=5),
        replace(row(3), stage=CHALLENGER),
        replace(row(4), stage=CHALLENGER),
    ]

    kept = latest_champions(rows)

    assert [(found.model_version, found.stage) for found in kept] == [(2, CHAMPION), (3, CHALLENGER), (4, CHALLENGER)]
    assert kept[1].serving_key == ("m", "1m", "challenger:m v3")


def test_latest_champions_when_other_model_ids_are_in_the_slot_then_one_champion_and_each_challenger() -> None:
    # lgbm v1, shadowed against m's champion, was promoted in slot m after m v1 (which still claims it);
    # lgbm v2 and m v2 challenge it with the same version number.
    rows = [
        row(1, updated_at_ms=1),
        ChampionRow("lgbm", 1, "1m", "1" * 64, 5, CHAMPION, "m"),
        ChampionRow("lgbm", 2, "1m", "2" * 64, 6, CHALLENGER, "m"),
        replace(row(2), stage=CHALLENGER),
    ]

    kept = latest_champions(rows)

    assert [(found.model_id, found.model_version, found.stage) for found in kept] == [
        ("lgbm", 1, CHAMPION),
        ("lgbm", 2, CHALLENGER),
        ("m", 2, CHALLENGER),
    ]
    assert kept[0].key == kept[1].key == ("m", "1m")
