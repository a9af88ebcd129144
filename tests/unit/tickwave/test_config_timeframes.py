"""Configuration of bar timeframes: only what the warehouse stores, clean errors otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tickwave.config import load_settings
from tickwave.errors import ConfigurationError
from tickwave.warehouse.tables import bar_table


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("TICKWAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_load_settings_when_list_not_json_then_one_clean_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKWAVE_STREAMS_TIMEFRAMES", "1m,1h")

    with pytest.raises(ConfigurationError, match="TICKWAVE_STREAMS_TIMEFRAMES") as raised:
        load_settings()

    assert "JSON" in str(raised.value)


@pytest.mark.parametrize(
    "variable", ["TICKWAVE_SYMBOLS", "TICKWAVE_EXECUTION_RISK_ALLOWED_SYMBOLS", "TICKWAVE_STREAMS"]
)
def test_load_settings_when_any_structured_value_not_json_then_clean_error(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "a,b")

    with pytest.raises(ConfigurationError, match=variable):
        load_settings()


def test_load_settings_when_timeframe_has_no_table_then_error_lists_what_is_stored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKWAVE_STREAMS_TIMEFRAMES", '["1m", "2h"]')

    with pytest.raises(ConfigurationError, match=r"TICKWAVE_STREAMS_TIMEFRAMES.*1s, 1m, 5m, 15m, 30m, 1h, 4h, 1d"):
        load_settings()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ('["1m", "1h"]', ("1m", "1h")),
        ('["M1", "H1", "H4", "D1"]', ("1m", "1h", "4h", "1d")),
        ('["1s", "1m", "5m", "15m", "30m", "1h", "4h", "1d"]', ("1s", "1m", "5m", "15m", "30m", "1h", "4h", "1d")),
        ('["1d", "1m", "m1"]', ("1m", "1d")),
    ],
)
def test_load_settings_when_timeframes_storable_then_canonical_and_each_has_a_table(
    monkeypatch: pytest.MonkeyPatch, given: str, expected: tuple[str, ...]
) -> None:
    monkeypatch.setenv("TICKWAVE_STREAMS_TIMEFRAMES", given)

    settings = load_settings()

    assert settings.streams.timeframes == expected
    for timeframe in settings.streams.timeframes:
        assert bar_table(timeframe).name == f"bars_{timeframe}"


def test_load_settings_when_model_timeframe_not_stored_then_clean_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_MODELS_TIMEFRAME", "2h")

    with pytest.raises(ConfigurationError, match="TICKWAVE_MODELS_TIMEFRAME"):
        load_settings()


def test_load_settings_when_config_file_not_toml_then_clean_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("x = [\n")
    monkeypatch.setenv("TICKWAVE_CONFIG", str(broken))

    with pytest.raises(ConfigurationError, match=r"TICKWAVE_CONFIG.*not a valid TOML file"):
        load_settings()
