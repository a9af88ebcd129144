"""Renamed settings: the old name works for one release and warns, the new one wins over it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tickwave.config import known_env_names, load_settings, reference_markdown, to_environment
from tickwave.config.environment import env_name, keys_of, renamed_env_names
from tickwave.config.renames import RENAMED, DeprecatedSettingWarning
from tickwave.config.settings import Settings

pytestmark = pytest.mark.usefixtures("clean_environment")

# Two valid values, other than the default and each other, of the renamed keys that are not plain numbers.
SPECIAL = {
    "execution.risk.allowed_symbols": ('["EURUSD"]', '["GBPUSD"]'),
    "execution.risk.daily_loss_action": ("HALTED", "HALTED"),  # two choices only: the default and this
    "execution.risk.signal_timeframe": ("5m", "1h"),
    "execution.risk.signal_timeframes": ('{"EURUSD": "5m"}', '{"EURUSD": "1h"}'),
    "execution.risk.stop_pips_by_symbol": ('{"EURUSD": [1, 2]}', '{"EURUSD": [3, 4]}'),
    "orchestration.late_reports_sensor_utc": ("02:15", "03:30"),
    "dashboards.missing_report_alert_utc": ("07:45", "08:10"),
    "market.hours": ("always", "always"),
    "market.timezone": ("Europe/London", "Asia/Tokyo"),
    "market.rollover_time": ("16:00", "15:00"),
    "market.holidays": ('["2026-12-25"]', '["2026-01-01"]'),
}
RENAMES = sorted(RENAMED.items())
# The keys whose variable changed with them (execution.control_max_age_s keeps TICKWAVE_EXECUTION_CONTROL_MAX_AGE_S).
NEW_VARIABLES = [(old, new) for old, new in RENAMES if env_name(old) != env_name(new)]


def sample(key: str, second: bool = False) -> str:
    """A valid value of ``key`` other than its default (``second``: another one, where there is one)."""
    if key in SPECIAL:
        return SPECIAL[key][second]
    default = default_of(key)
    if isinstance(default, bool):
        return "false" if default else "true"
    assert isinstance(default, int | float), f"{key}: add its values to SPECIAL"
    if not default:
        return "2" if second else "1"
    return str(type(default)(default / (4 if second else 2)))  # below every upper bound, above a lower one


def toml_value(text: str) -> str:
    """The TOML spelling of a variable's value (JSON, or else a plain string)."""
    try:
        value = json.loads(text)
    except ValueError:
        value = text

    def render(item: object) -> str:
        if isinstance(item, dict):
            return "{" + ", ".join(f"{name} = {render(part)}" for name, part in item.items()) + "}"
        if isinstance(item, list):
            return "[" + ", ".join(render(part) for part in item) + "]"
        return json.dumps(item)  # strings, numbers and booleans are spelt alike

    return render(value)


def default_of(key: str) -> object:
    return keys_of(Settings)[key].get_default(call_default_factory=True)


def value_of(settings: Settings, key: str) -> object:
    value: object = settings
    for part in key.split("."):
        value = getattr(value, part)
    return value


def test_renamed_when_listed_then_every_new_key_exists_and_no_old_key_does() -> None:
    keys = keys_of(Settings)

    assert all(new in keys and old not in keys for old, new in RENAMED.items())
    assert len(set(RENAMED.values())) == len(RENAMED)


def test_env_names_when_every_key_named_then_no_two_keys_share_a_variable() -> None:
    keys = list(keys_of(Settings))

    assert len({env_name(key) for key in keys}) == len(keys)
    known = known_env_names()
    assert all(known[env_name(old)] == new for old, new in RENAMED.items() if env_name(old) in known)


@pytest.mark.parametrize(("old", "new"), NEW_VARIABLES)
def test_load_settings_when_old_variable_set_then_as_the_new_with_a_warning_naming_it(
    monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    monkeypatch.setenv(env_name(new), sample(new))
    expected = value_of(load_settings(), new)
    monkeypatch.delenv(env_name(new))
    monkeypatch.setenv(env_name(old), sample(new))

    with pytest.warns(DeprecatedSettingWarning, match=f"{env_name(old)} is deprecated: use {env_name(new)}"):
        settings = load_settings()

    assert value_of(settings, new) == expected != default_of(new)


@pytest.mark.parametrize(("old", "new"), RENAMES)
def test_load_settings_when_new_variable_set_then_applied_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, recwarn: pytest.WarningsRecorder, old: str, new: str
) -> None:
    monkeypatch.setenv(env_name(new), sample(new))

    settings = load_settings()

    assert value_of(settings, new) != default_of(new)
    assert not [warning for warning in recwarn if issubclass(warning.category, DeprecatedSettingWarning)]


@pytest.mark.parametrize(("old", "new"), NEW_VARIABLES)
def test_load_settings_when_old_and_new_variables_set_then_new_wins_and_old_is_named_ignored(
    monkeypatch: pytest.MonkeyPatch, old: str, new: str
) -> None:
    monkeypatch.setenv(env_name(new), sample(new))
    expected = value_of(load_settings(), new)
    monkeypatch.setenv(env_name(old), sample(new, second=True))

    with pytest.warns(DeprecatedSettingWarning, match=f"{env_name(old)} is deprecated and ignored"):
        settings = load_settings()

    assert value_of(settings, new) == expected


@pytest.mark.parametrize(("old", "new"), RENAMES)
def test_load_settings_when_old_toml_key_then_as_the_new_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, old: str, new: str
) -> None:
    monkeypatch.setenv(env_name(new), sample(new))
    expected = value_of(load_settings(), new)
    monkeypatch.delenv(env_name(new))
    section, key = old.split(".")
    (tmp_path / "tickwave.toml").write_text(f"[{section}]\n{key} = {toml_value(sample(new))}\n")

    with pytest.warns(DeprecatedSettingWarning, match=f"{old} .*deprecated: use {new}"):
        settings = load_settings()

    assert value_of(settings, new) == expected


def test_load_settings_when_old_variable_over_new_toml_key_then_the_environment_still_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "tickwave.toml").write_text("[execution.risk]\nmax_order_lots = 0.5\n")
    monkeypatch.setenv("TICKWAVE_EXECUTION_MAX_ORDER_LOTS", "0.25")

    with pytest.warns(DeprecatedSettingWarning):
        settings = load_settings()

    assert settings.execution.risk.max_order_lots == 0.25


def test_load_settings_when_sub_section_json_then_its_keys_variables_override_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKWAVE_EXECUTION_RISK", '{"max_order_lots": 0.5, "lot_step": 0.1}')
    monkeypatch.setenv("TICKWAVE_EXECUTION_RISK_MAX_ORDER_LOTS", "0.25")

    settings = load_settings()

    assert (settings.execution.risk.max_order_lots, settings.execution.risk.lot_step) == (0.25, 0.1)


def test_to_environment_when_parent_read_old_variables_then_child_inheriting_them_gets_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TICKWAVE_ORCHESTRATION_REPORTS_DUE_UTC", "02:15")
    monkeypatch.setenv("TICKWAVE_EXECUTION_MARKET_HOLIDAYS", '["2026-12-25"]')
    monkeypatch.setenv("TICKWAVE_EXECUTION_PAPER_LATENCY_MS", "250")
    with pytest.warns(DeprecatedSettingWarning):
        parent = load_settings()
    environment = to_environment(parent)
    for name, value in environment.items():  # the child inherits the old names too
        monkeypatch.setenv(name, value)

    with pytest.warns(DeprecatedSettingWarning, match="ignored"):
        child = load_settings()

    assert child.model_copy(update={"state_dir": parent.state_dir}) == parent
    assert (child.execution.paper_broker.latency_ms, child.market.holidays[0].isoformat()) == (250, "2026-12-25")
    assert not renamed_env_names().keys() & environment.keys()


def test_reference_markdown_when_generated_then_lists_each_old_name_beside_its_new_one() -> None:
    table = reference_markdown()

    for old, new in RENAMED.items():
        variable = "(unchanged)" if env_name(old) == env_name(new) else f"`{env_name(old)}`"
        assert f"| {variable} | `{old}` | `{env_name(new)}`, `{new}` |" in table
