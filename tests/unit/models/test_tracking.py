"""What the MLflow mirror holds, computed from the warehouse's record: aliases, run params, the judgement."""

from __future__ import annotations

import pytest

from models.registry_rows import CANDIDATE, RETIRED, RegistryEntry, RegistryEvent
from models.tracking import MAX_PARAM_CHARS, expected_aliases, latest_judgement, run_address, run_params
from tickwave.config import load_settings
from tickwave.errors import ConfigurationError
from tickwave.modeling import CHALLENGER, CHAMPION

ENTRY = RegistryEntry("m", 1, CANDIDATE, "xgboost", "models/a.onnx", "a" * 64, "h", {}, {}, 0, 1, 2, 2)


def version(number: int, stage: str, updated_at_ms: int, **params: str) -> RegistryEntry:
    return RegistryEntry(
        **{**ENTRY.__dict__, "model_version": number, "stage": stage, "updated_at_ms": updated_at_ms, "params": params}
    )


@pytest.mark.parametrize(
    ("entries", "aliases"),
    [
        ([], {}),
        ([version(1, CANDIDATE, 5), version(2, RETIRED, 6)], {}),
        ([version(1, RETIRED, 5), version(2, CHAMPION, 6), version(3, CHALLENGER, 7)], {CHAMPION: 2, CHALLENGER: 3}),
        # a champion per timeframe, two challengers: the alias names the one changed last
        ([version(1, CHAMPION, 9, timeframe="5m"), version(2, CHAMPION, 6)], {CHAMPION: 1}),
        ([version(3, CHALLENGER, 4), version(4, CHALLENGER, 4), version(5, CHALLENGER, 3)], {CHALLENGER: 4}),
    ],
)
def test_expected_aliases_when_stages_vary_then_champion_and_challenger_follow_them(
    entries: list[RegistryEntry], aliases: dict[str, int]
) -> None:
    assert expected_aliases(entries) == aliases


def test_run_params_when_a_version_is_mirrored_then_its_data_window_and_identity_are_params() -> None:
    entry = RegistryEntry(
        **{
            **ENTRY.__dict__,
            "params": {"symbols": "EURUSD", "note": "x" * (MAX_PARAM_CHARS + 10)},
            "trained_from_ms": 1_704_067_200_000,
            "trained_to_ms": 1_706_745_600_000,
        }
    )

    params = run_params(entry)

    assert params["trained_from"] == "2024-01-01T00:00:00+00:00" and params["trained_to"] == "2024-02-01T00:00:00+00:00"
    assert (params["trained_from_ms"], params["model_version"], params["symbols"]) == ("1704067200000", "1", "EURUSD")
    assert params["artifact_sha256"] == "a" * 64 and len(params["note"]) == MAX_PARAM_CHARS


def test_latest_judgement_when_refused_then_promoted_then_the_promotion_is_mirrored() -> None:
    events = [
        RegistryEvent("m", 2, "promotion_refused", CANDIDATE, CANDIDATE, "a", "worse", 10, {"x": 1.0}),
        RegistryEvent("m", 2, "promoted", CANDIDATE, CHAMPION, "a", "better", 20, {"x": 2.0}),
        RegistryEvent("m", 2, "retired", CHAMPION, RETIRED, "a", "replaced", 30),
        RegistryEvent("m", 1, "promoted", CANDIDATE, CHAMPION, "a", "first", 40),
    ]

    judged = latest_judgement(events, 2)

    assert judged is not None and (judged.action, judged.metrics) == ("promoted", {"x": 2.0})
    assert latest_judgement(events, 3) is None


def test_settings_when_the_tracking_uri_is_not_http_then_refused_and_unset_by_default() -> None:
    assert load_settings().models.mlflow_tracking_uri is None
    assert run_address("http://127.0.0.1:5000/", "1", "r") == "http://127.0.0.1:5000/#/experiments/1/runs/r"
    for refused in (
        "file:///tmp/mlruns",
        "sqlite:///mlflow.db",
        "databricks",
        "http://host/ x",
        "https://user:secret@host",
    ):
        with pytest.raises(ConfigurationError, match="mlflow_tracking_uri"):
            load_settings(models={"mlflow_tracking_uri": refused})
