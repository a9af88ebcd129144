from __future__ import annotations

from pathlib import Path

import pytest

from tickwave.config import known_env_names, load_settings, masked_settings
from tickwave.errors import ConfigurationError


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(__import__("os").environ):
        if name.upper().startswith("TICKWAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_load_settings_when_nothing_configured_then_defaults() -> None:
    settings = load_settings()

    assert settings.state_dir == Path(".tickwave")
    assert settings.kafka.bootstrap is None
    assert not settings.kafka.is_external
    assert settings.kafka.heap_mb == 512


def test_load_settings_when_env_names_nested_key_then_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_KAFKA_BOOTSTRAP", "broker-1:9092")
    monkeypatch.setenv("TICKWAVE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    monkeypatch.setenv("TICKWAVE_KAFKA_HEAP_MB", "768")
    monkeypatch.setenv("TICKWAVE_STATE_DIR", "/var/lib/tickwave")

    settings = load_settings()

    assert settings.kafka.bootstrap == "broker-1:9092"
    assert settings.kafka.is_external
    assert settings.kafka.heap_mb == 768
    assert settings.state_dir == Path("/var/lib/tickwave")


def test_load_settings_when_toml_and_env_then_env_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "tickwave.toml").write_text('log_level = "DEBUG"\n[kafka]\nheap_mb = 300\nport = 29092\n')
    monkeypatch.setenv("TICKWAVE_KAFKA_PORT", "39092")

    settings = load_settings()

    assert settings.log_level == "DEBUG"
    assert settings.kafka.heap_mb == 300
    assert settings.kafka.port == 39092


def test_load_settings_when_unknown_env_key_then_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_KAFKA_BOOTSTRAPS", "x:1")

    with pytest.raises(ConfigurationError, match="TICKWAVE_KAFKA_BOOTSTRAPS: unknown setting"):
        load_settings()


def test_load_settings_when_unknown_toml_key_then_error_names_it(tmp_path: Path) -> None:
    (tmp_path / "tickwave.toml").write_text("[kafka]\nheap = 3\n")

    with pytest.raises(ConfigurationError, match=r"kafka\.heap: unknown setting"):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TICKWAVE_KAFKA_PORT", "abc", r"kafka\.port \(TICKWAVE_KAFKA_PORT\) = 'abc'.*expected int"),
        ("TICKWAVE_KAFKA_PORT", "70000", r"kafka\.port.*less than or equal to 65535"),
        ("TICKWAVE_KAFKA_HEAP_MB", "64", r"kafka\.heap_mb.*greater than or equal to 128"),
        ("TICKWAVE_LOG_LEVEL", "LOUD", r"log_level.*'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
    ],
)
def test_load_settings_when_invalid_value_then_error_names_key_and_form(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)

    with pytest.raises(ConfigurationError, match=expected):
        load_settings()


def test_load_settings_when_several_problems_then_all_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_NOPE", "1")
    monkeypatch.setenv("TICKWAVE_KAFKA_PORT", "x")

    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    assert "TICKWAVE_NOPE" in str(caught.value)
    assert "kafka.port" in str(caught.value)


def test_load_settings_when_secret_invalid_then_value_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(clickhouse={"password": 12345678})

    assert "12345678" not in str(caught.value)


def test_masked_settings_when_password_set_then_never_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_CLICKHOUSE_PASSWORD", "hunter2-secret")

    shown = masked_settings(load_settings())

    assert shown["clickhouse"]["password"] == "********"
    assert "hunter2-secret" not in repr(shown)


def test_postgres_url_when_set_then_masked_passed_to_children_and_a_wrong_scheme_refused_unechoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tickwave.config import to_environment

    monkeypatch.setenv("TICKWAVE_ORCHESTRATION_POSTGRES_URL", "postgresql://dagster:hunter2-pg@127.0.0.1:5432/dagster")
    settings = load_settings()
    shown = masked_settings(settings)
    monkeypatch.setenv("TICKWAVE_ORCHESTRATION_POSTGRES_URL", "mysql://dagster:hunter3-pg@127.0.0.1/dagster")
    with pytest.raises(ConfigurationError) as caught:
        load_settings()

    assert shown["orchestration"]["postgres_url"] == "********" and "hunter2-pg" not in repr(shown)
    assert to_environment(settings)["TICKWAVE_ORCHESTRATION_POSTGRES_URL"].endswith("hunter2-pg@127.0.0.1:5432/dagster")
    assert "orchestration.postgres_url" in str(caught.value) and "not a PostgreSQL URL" in str(caught.value)
    assert "hunter3-pg" not in str(caught.value)


def test_settings_when_loaded_then_frozen() -> None:
    settings = load_settings()

    with pytest.raises(ValueError, match="frozen"):
        settings.log_level = "DEBUG"  # type: ignore[misc]
    with pytest.raises(ValueError, match="frozen"):
        settings.kafka.port = 1  # type: ignore[misc]


def test_config_file_when_named_but_missing_then_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKWAVE_CONFIG", "/nonexistent/tickwave.toml")

    with pytest.raises(ConfigurationError, match="no such file"):
        load_settings()


def test_known_env_names_when_listed_then_cover_every_section_key() -> None:
    names = known_env_names()

    assert names["TICKWAVE_KAFKA_BOOTSTRAP"] == "kafka.bootstrap"
    assert names["TICKWAVE_CLICKHOUSE_URL"] == "clickhouse.url"
    assert names["TICKWAVE_STATE_DIR"] == "state_dir"


def test_to_environment_when_loaded_by_a_child_then_same_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from tickwave.config import to_environment

    parent = load_settings(
        kafka={"bootstrap": "b:1", "security_protocol": "PLAINTEXT", "heap_mb": 700},
        clickhouse={"password": "pw-1"},
        streams={"timeframes": ("1s", "5m")},
    )
    for name, value in to_environment(parent).items():
        monkeypatch.setenv(name, value)

    child = load_settings()

    assert child.state_path == parent.state_path  # passed absolute: the child's working directory may differ
    assert child.model_copy(update={"state_dir": parent.state_dir}) == parent
    assert child.clickhouse.password is not None and child.clickhouse.password.get_secret_value() == "pw-1"


@pytest.mark.parametrize(
    ("models", "expected"),
    [
        ({}, "xgb_direction"),
        ({"framework": "lightgbm"}, "lgbm_direction"),
        ({"framework": "ensemble"}, "ensemble_direction"),
        ({"framework": "ensemble", "model_id": "eurusd_trend"}, "eurusd_trend"),  # the user's choice wins
    ],
)
def test_models_registry_id_when_no_model_id_then_the_default_of_the_kind(
    monkeypatch: pytest.MonkeyPatch, models: dict[str, str], expected: str
) -> None:
    from tickwave.config import to_environment

    settings = load_settings(models=models)
    for name, value in to_environment(settings).items():
        monkeypatch.setenv(name, value)

    assert settings.models.registry_id == expected
    assert load_settings().models.registry_id == expected  # a child process serves the same id


@pytest.mark.parametrize(
    ("section", "key"), [("orchestration", "late_reports_sensor_utc"), ("dashboards", "missing_report_alert_utc")]
)
@pytest.mark.parametrize("due", ["00:00", "00:15", "00:30"])
def test_load_settings_when_reports_due_before_their_schedule_then_error_names_both(
    section: str, key: str, due: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(**{section: {key: due}})

    assert f"{section}.{key}" in str(caught.value)
    assert f"due at {due} UTC, not after the daily reports' schedule at 00:30 UTC" in str(caught.value)


def test_load_settings_when_reports_due_after_their_schedule_then_accepted() -> None:
    settings = load_settings(
        orchestration={"late_reports_sensor_utc": "00:31"}, dashboards={"missing_report_alert_utc": "23:59"}
    )

    assert settings.orchestration.late_reports_sensor_utc == "00:31"
    assert settings.dashboards.missing_report_alert_utc == "23:59"
