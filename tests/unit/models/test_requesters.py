"""Who asked for a registry change: the CLI, the demo and Dagster name the requester one way."""

from __future__ import annotations

import os
import pwd
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from app import demo
from models.requesters import by_command, local_user
from orchestration.client import REQUESTED_BY_TAG, UNNAMED_LAUNCH, launched_by
from tickwave.config import load_settings

ME = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


def test_local_user_when_user_variables_claim_another_name_then_the_real_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "mallory")

    assert local_user() == ME
    assert by_command("models promote") == f"{ME} via `tickwave models promote`"


@pytest.mark.parametrize(
    ("tags", "trigger"),
    [
        ({"dagster/schedule_name": "weekly_training"}, "schedule weekly_training"),
        ({"dagster/sensor_name": "drift_retrain"}, "sensor drift_retrain"),
        ({"dagster/backfill": "abcdefgh"}, "backfill abcdefgh"),
        ({REQUESTED_BY_TAG: "ann@box via `tickwave demo`"}, "ann@box via `tickwave demo` (submitted over GraphQL)"),
        ({}, UNNAMED_LAUNCH),
    ],
)
def test_launched_by_when_a_run_has_these_tags_then_its_trigger_and_whose_dagster(
    tags: dict[str, str], trigger: str
) -> None:
    assert launched_by("0123456789abcdef", tags) == f"dagster run 01234567 of {ME}, launched by {trigger}"


def test_demo_when_it_trains_and_promotes_then_the_registry_hears_the_local_user(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # A fake of the training pipeline: only the actor the demo hands to it (and so to the registry) matters here.
    heard: list[str] = []

    def train_model(settings: Any, symbols: Any, range_ms: Any, actor: str, **_: Any) -> Any:
        heard.append(actor)
        entry = SimpleNamespace(params={}, model_id="m", model_version=1)
        result = SimpleNamespace(dataset=SimpleNamespace(frame=[]), training_seconds=0.0)
        return SimpleNamespace(entry=entry, decision=SimpleNamespace(is_promoted=True), result=result)

    monkeypatch.setattr("models.pipeline.train_model", train_model)

    demo.train_on_sample(load_settings(state_dir=tmp_path), ["EURUSD"], (0, 1))

    assert heard == [f"{ME} via `tickwave demo`"]
