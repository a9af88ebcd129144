"""Renamed settings: the old name works for one release and warns, the new one wins over it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tickwave.config import known_env_names, load_settings, reference_markdown, to_environment
from tickwave.config.environment import env_name, keys_of
from tickwave.config.renames import RENAMED, DeprecatedSettingWarning
from tickwave.config.settings import Settings

# One value per renamed key that differs from its default and passes its validation.
VALUES = {
    "ingest.max_source_clock_lead_ms": "30000",
    "streams.max_tick_lead_ms": "2500",
    "orchestration.late_reports_sensor_utc": "02:15",
    "dashboards.missing_report_alert_utc": "07:45",
}
OTHER_VALUES = {
    "ingest.max_source_clock_lead_ms": "45000",
    "streams.max_tick_lead_ms": "1500",
    "orchestration.late_reports_sensor_utc": "03:30",
    "dashboards.missing_report_alert_utc": "08:10",
}

pytestmark = pytest.mark.usefixtures("clean_environment")


def value_of(settings: Settings, key: str) -> str:
    value: object = settings
    for part in key.split("."):
        value = getattr(value, part)
    return str(value)


def test_renamed_when_listed_then_every_new_key_exists_and_no_old_key_does() -> None:
    keys = keys_of(Settings)

    assert set(VALUES) == set(RENAMED.values())
    assert all(new in keys and old not in keys for old, new in RENAMED.items())


def test_env_names_when_every_key_named_then_no_two_keys_share_a_variable() -> None:
    keys = list(keys_of(Settings))

    assert len({env_name(key) for key in keys}) == len(keys)
    assert not {env_name(old) for old in RENAMED} & set(known_env_names())


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_load_settings_when_old_variable_set_then_applied_with_a_warning_naming_the_new(
    monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    monkeypatch.setenv(env_name(old), VALUES[new])

    with pytest.warns(DeprecatedSettingWarning, match=f"{env_name(old)} is deprecated: use {env_name(new)}"):
        settings = load_settings()

    assert value_of(settings, new) == VALUES[new]


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_load_settings_when_new_variable_set_then_applied_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder, old: str, new: str
) -> None:
    monkeypatch.setenv(env_name(new), VALUES[new])

    settings = load_settings()

    assert value_of(settings, new) == VALUES[new]
    assert not [warning for warning in recwarn if issubclass(warning.category, DeprecatedSettingWarning)]


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_load_settings_when_old_and_new_variables_set_then_new_wins_and_old_is_named_ignored(
    monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    monkeypatch.setenv(env_name(old), OTHER_VALUES[new])
    monkeypatch.setenv(env_name(new), VALUES[new])

    with pytest.warns(DeprecatedSettingWarning, match=f"{env_name(old)} is deprecated and ignored"):
        settings = load_settings()

    assert value_of(settings, new) == VALUES[new]


@pytest.mark.parametrize(("old", "new"), sorted(RENAMED.items()))
def test_load_settings_when_old_toml_key_then_applied_with_a_warning(tmp_path: Path, old: str, new: str) -> None:
    section, key = old.split(".")
    (tmp_path / "tickwave.toml").write_text(f'[{section}]\n{key} = "{VALUES[new]}"\n')

    with pytest.warns(DeprecatedSettingWarning, match=f"{old} .*deprecated: use {new}"):
        settings = load_settings()

    assert value_of(settings, new) == VALUES[new]


def test_load_settings_when_old_variable_over_new_toml_key_then_the_environment_still_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "tickwave.toml").write_text("[streams]\nmax_tick_lead_ms = 1500\n")
    monkeypatch.setenv("TICKWAVE_STREAMS_MAX_FUTURE_MS", "2500")

    with pytest.warns(DeprecatedSettingWarning):
        settings = load_settings()

    assert settings.streams.max_tick_lead_ms == 2500


def test_to_environment_when_parent_read_an_old_variable_then_child_inheriting_it_gets_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKWAVE_ORCHESTRATION_REPORTS_DUE_UTC", "02:15")
    with pytest.warns(DeprecatedSettingWarning):
        parent = load_settings()
    for name, value in to_environment(parent).items():  # the child inherits the old name too
        monkeypatch.setenv(name, value)

    with pytest.warns(DeprecatedSettingWarning, match="ignored"):
        child = load_settings()

    assert child.model_copy(update={"state_dir": parent.state_dir}) == parent
    assert "TICKWAVE_ORCHESTRATION_REPORTS_DUE_UTC" not in to_environment(parent)


def test_reference_markdown_when_generated_then_lists_each_old_name_beside_its_new_one() -> None:
    table = reference_markdown()

    for old, new in RENAMED.items():
        assert f"| `{env_name(old)}` | `{old}` | `{env_name(new)}`, `{new}` |" in table
