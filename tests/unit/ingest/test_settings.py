"""The settings ingest adds: the symbol registry and the ``ingest`` and ``mt5`` sections."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tickwave.config import load_settings, masked_settings
from tickwave.errors import ConfigurationError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("TICKWAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_symbols_when_not_configured_then_fx_majors_and_gold_known() -> None:
    settings = load_settings()

    assert settings.symbols["EURUSD"].digits == 5
    assert settings.symbols["USDJPY"].tick_size == 0.001
    assert "BTCUSD" not in settings.symbols


def test_symbols_when_configured_in_toml_then_they_replace_the_defaults(tmp_path: Path) -> None:
    (tmp_path / "tickwave.toml").write_text("[symbols.US30]\ndigits = 1\ntick_size = 0.5\n")

    settings = load_settings()

    assert list(settings.symbols) == ["US30"]
    assert settings.symbols["US30"].tick_size == 0.5


@pytest.mark.parametrize(
    ("symbols", "message"),
    [
        ({"EURUSD": {"digits": 2, "tick_size": 0.0001}}, "finer than 2 digits"),
        ({"EUR USD": {"digits": 5, "tick_size": 0.00001}}, "invalid symbol names"),
        ({"EURUSD": {"digits": 5}}, "tick_size"),
    ],
)
def test_symbols_when_invalid_then_configuration_error(symbols: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        load_settings(symbols=symbols)


def test_mt5_when_password_in_environment_then_secret_and_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_MT5_PASSWORD", "hunter2")
    monkeypatch.setenv("TICKWAVE_MT5_LOGIN", "5001")
    monkeypatch.setenv("TICKWAVE_MT5_SERVER_TIMEZONE", "Europe/Athens")

    settings = load_settings()

    assert settings.mt5.password is not None and settings.mt5.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings.mt5)
    assert masked_settings(settings)["mt5"]["password"] == "********"
    assert settings.mt5.login == 5001


def test_mt5_when_server_timezone_unknown_then_error_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_MT5_SERVER_TIMEZONE", "Atlantis/Capital")

    with pytest.raises(ConfigurationError, match=r"mt5.server_timezone.*unknown time zone"):
        load_settings()


def test_ingest_when_env_sets_values_then_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_INGEST_MAX_SOURCE_CLOCK_LEAD_MS", "5000")
    monkeypatch.setenv("TICKWAVE_INGEST_SIM_SYMBOLS", '["EURUSD","XAUUSD"]')

    settings = load_settings()

    assert settings.ingest.max_source_clock_lead_ms == 5000
    assert settings.ingest.sim_symbols == ["EURUSD", "XAUUSD"]
