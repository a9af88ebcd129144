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
from orchestration.origin import trigger
from tickwave.config import load_settings

RUN_ID = "01234567-89ab-4def-8123-456789abcdef"
ME = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"


def test_local_user_when_user_variables_claim_another_name_then_the_real_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for variable in ("USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "mallory")

    assert local_user() == ME
    assert by_command("models promote") == f"{ME} via `tickwave models promote`"


@pytest.mark.parametrize(
    ("tags", "named"),
    [
        (
            {"dagster/schedule_name": "weekly_training"},
            f"{UNNAMED_LAUNCH}; its tag names schedule weekly_training, but no tick of it launched this run",
        ),
        (
            {"dagster/sensor_name": "drift_retrain", REQUESTED_BY_TAG: "ann@box"},
            "ann@box (as the launch claims); its tag names sensor drift_retrain, but no tick of it launched this run",
        ),
        ({"dagster/backfill": "abcdefgh"}, f"backfill abcdefgh of {UNNAMED_LAUNCH}"),
        ({REQUESTED_BY_TAG: "ann@box via `tickwave demo`"}, "ann@box via `tickwave demo` (as the launch claims)"),
        ({}, UNNAMED_LAUNCH),
    ],
)
def test_launched_by_when_a_run_has_these_tags_and_no_tick_then_a_launch_by_a_person(
    tags: dict[str, str], named: str
) -> None:
    # A tag is what any GraphQL client writes; only a schedule's or sensor's tick listing the run names one.
    import dagster as dg

    with dg.DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(dg.GraphDefinition(name="g").to_job(), run_id=RUN_ID, tags=tags)

        assert trigger(instance, run) == named
        assert launched_by(instance, run) == f"dagster run 01234567 of {ME}, launched by {named}"


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
