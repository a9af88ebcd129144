"""`tickwave train` and `tickwave models list | show | promote | rollback | shadow` against the real warehouse."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from models.requesters import by_command
from tests.integration.models.conftest import MODELS, RANGE_MS, cli_environment
from tickwave.config import Settings


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M")


@pytest.fixture
def cli_env(models_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A tickwave.toml naming the warehouse (as an external server), the state dir and the model settings.

    The CLI's console is held at 250 columns: rich fixes a console's width when COLUMNS is set as it is
    created, so an earlier test of the session could leave it narrow and the tables wrapped.
    """
    from app.cli.common import console

    monkeypatch.setattr(console, "_width", 250)  # restored as it was (None: from the environment) afterwards
    return cli_environment(models_settings, tmp_path, MODELS)


def test_cli_when_training_and_managing_models_then_each_command_answers(cli_env: dict[str, str]) -> None:
    runner = CliRunner(env=cli_env)
    model_id = next(
        line for line in Path(cli_env["TICKWAVE_CONFIG"]).read_text().splitlines() if line.startswith("model_id")
    ).split('"')[1]

    trained = runner.invoke(
        app, ["train", "--symbols", "EURUSD,USDJPY", "--from", iso(RANGE_MS[0]), "--to", iso(RANGE_MS[1])]
    )
    listed = runner.invoke(app, ["models", "list"])
    shown = runner.invoke(app, ["models", "show", "1"])
    promoted_again = runner.invoke(app, ["models", "promote", "1"])
    rolled_back = runner.invoke(app, ["models", "rollback"])
    unknown = runner.invoke(app, ["models", "show", "9"])
    champion_shadowed = runner.invoke(app, ["models", "shadow", "1"])

    assert trained.exit_code == 0, trained.output
    assert f"{model_id} v1: champion" in trained.output and "promoted to champion" in trained.output
    assert "report.html" in trained.output and "log loss" in trained.output
    assert listed.exit_code == 0 and model_id in listed.output and "champion" in listed.output
    assert by_command("train") in listed.output  # who promoted it: the local account, not $USER
    assert shown.exit_code == 0 and "registered" in shown.output and "promoted" in shown.output
    assert "holdout_log_loss" in shown.output and "label_definition" in shown.output
    assert promoted_again.exit_code == 1 and "already the champion" in promoted_again.output
    assert rolled_back.exit_code == 1 and "nothing to roll back to" in rolled_back.output
    assert unknown.exit_code == 1 and "v9 is not registered" in unknown.output
    assert champion_shadowed.exit_code == 1 and "champion -> challenger is not an allowed" in champion_shadowed.output


def test_cli_when_range_is_empty_then_error_exit_and_nothing_listed(cli_env: dict[str, str]) -> None:
    runner = CliRunner(env=cli_env)

    trained = runner.invoke(app, ["train", "--symbols", "EURUSD", "--from", "2020-01-01", "--to", "2020-01-02"])
    listed = runner.invoke(app, ["models", "list"])

    assert trained.exit_code == 1 and "0 labelled rows" in trained.output
    assert listed.exit_code == 0 and "no registered models" in listed.output


def test_cli_when_model_is_lightgbm_or_ensemble_then_registered_under_its_kinds_id_and_unknown_refused(
    cli_env: dict[str, str],
) -> None:
    config = Path(cli_env["TICKWAVE_CONFIG"])  # no models.model_id: each kind's default id
    config.write_text("\n".join(line for line in config.read_text().splitlines() if not line.startswith("model_id")))
    runner = CliRunner(env=cli_env)
    span = ["--symbols", "EURUSD,USDJPY", "--from", iso(RANGE_MS[0]), "--to", iso(RANGE_MS[1])]

    trained = runner.invoke(app, ["train", *span, "--model", "lightgbm", "--no-promote"])
    ensemble = runner.invoke(app, ["train", *span, "--model", "ensemble"])
    unknown = runner.invoke(app, ["train", *span, "--model", "catboost"])
    shown = runner.invoke(app, ["models", "show", "1", "--model-id", "lgbm_direction"])
    shown_ensemble = runner.invoke(app, ["models", "show", "1", "--model-id", "ensemble_direction"])
    challenge = ["models", "shadow", "1", "--model-id", "lgbm_direction", "--against"]
    nobody = runner.invoke(app, [*challenge, "xgb_direction"])
    shadowed = runner.invoke(app, [*challenge, "ensemble_direction"])
    listed = runner.invoke(app, ["models", "list", "--all"])
    slot = runner.invoke(app, ["models", "list", "--model-id", "ensemble_direction"])

    assert trained.exit_code == 0, trained.output
    assert "lgbm_direction v1: candidate" in trained.output and "report.html" in trained.output
    assert shown.exit_code == 0 and "lightgbm" in shown.output
    assert ensemble.exit_code == 0 and "ensemble_direction v1: champion" in ensemble.output, ensemble.output
    assert "ensemble" in shown_ensemble.output and "weight_lightgbm" in shown_ensemble.output
    assert unknown.exit_code == 2 and "framework" in unknown.output
    assert nobody.exit_code == 1 and "xgb_direction has no 1m champion" in nobody.output, nobody.output
    assert shadowed.exit_code == 0, shadowed.output
    assert "lgbm_direction v1 is a challenger on 1m bars beside champion ensemble_direction v1" in shadowed.output
    assert "challenger" in listed.output and "xgb_direction" not in listed.output
    assert "lgbm_direction" in slot.output and "challenger" in slot.output  # the slot's challenger of another id
