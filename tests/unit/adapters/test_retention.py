"""The retention table: its defaults, the settings over them, the compliance minimum, and its docs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.retention import (
    FOREVER,
    mart_retention,
    retention_markdown,
    retention_summary_markdown,
    table_retention,
    topic_retention,
)
from tickwave.config import REGULATORY_MINIMUM_DAYS, RetentionSettings, load_settings
from tickwave.errors import ConfigurationError
from tickwave.topics import topic_specs
from tickwave.warehouse.tables import TABLES

ROOT = Path(__file__).resolve().parents[3]
COMPLIANCE = {"signals", "orders", "order_events", "fills", "risk_events", "model_registry", "model_registry_events"}


def rules(**retention: object) -> dict[str, tuple[int, str | None]]:
    return {rule.table: (rule.days, rule.ttl) for rule in table_retention(RetentionSettings(**retention))}


def test_table_retention_when_defaults_then_every_table_once_and_compliance_tables_five_years() -> None:
    resolved = table_retention(RetentionSettings())
    names = [rule.table for rule in resolved]

    assert len(names) == len(set(names))
    assert set(TABLES) | {"query_log", "fill_positions", "fill_positions_daily"} == set(
        names
    )  # the writer's tables, the access log, the MV's
    assert {rule.table for rule in resolved if rule.is_compliance} == COMPLIANCE
    kept = {rule.table: rule.days for rule in resolved if rule.is_compliance}
    assert all(days == FOREVER or days >= REGULATORY_MINIMUM_DAYS for days in kept.values()), kept
    assert kept["orders"] == REGULATORY_MINIMUM_DAYS == 1827  # five years with two leap days
    assert rules()["ticks"] == (365, "toDateTime(inserted_at) + toIntervalDay(365)")
    assert rules()["bars_1m"] == (FOREVER, None)


def test_table_retention_when_overridden_then_days_replace_the_defaults() -> None:
    resolved = rules(table_days={"ticks": 30, "bars_1m": 3650, "orders": FOREVER}, compliance_days=2557)

    assert resolved["ticks"] == (30, "toDateTime(inserted_at) + toIntervalDay(30)")
    assert resolved["bars_1m"][0] == 3650
    assert resolved["orders"] == (FOREVER, None)
    assert resolved["fills"][0] == 2557  # seven years, as a competent authority may ask


@pytest.mark.parametrize("days", [1, 365, REGULATORY_MINIMUM_DAYS - 1])
def test_table_retention_when_a_compliance_table_is_shortened_then_refused_unless_allowed(days: int) -> None:
    with pytest.raises(ConfigurationError, match="compliance table keeps rows at least 1827 days"):
        rules(table_days={"order_events": days})

    assert rules(table_days={"order_events": days}, allow_short_compliance=True)["order_events"][0] == days


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"table_days": {"tick": 30}}, "unknown tables tick"),
        ({"table_days": {"ticks": -1}}, "0 for forever"),
    ],
)
def test_table_retention_when_settings_are_wrong_then_refused(retention: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        rules(**retention)


@pytest.mark.parametrize("key", ["compliance_days", "reports_days"])
def test_settings_when_compliance_days_under_the_minimum_then_refused_unless_allowed(key: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{key} = 365: under the regulatory minimum"):
        load_settings(retention={key: 365})

    assert getattr(load_settings(retention={key: 365, "allow_short_compliance": True}).retention, key) == 365


def test_topic_retention_when_defaults_then_every_registered_topic_once() -> None:
    resolved = topic_retention(RetentionSettings())

    assert [rule.topic for rule in resolved] == [spec.base_name for spec in topic_specs(load_settings())]
    assert all(rule.ms > 0 and (rule.bytes > 0 or rule.bytes == -1) for rule in resolved)


@pytest.mark.parametrize(
    ("retention", "message"),
    [
        ({"topic_retention_ms": {"tick": 1}}, "unknown topics tick"),
        ({"topic_retention_bytes": {"ticks": 0}}, "a positive value, or -1"),
        ({"topic_retention_ms": {"ticks": -2}}, "a positive value, or -1"),
    ],
)
def test_topic_retention_when_settings_are_wrong_then_refused(retention: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        topic_retention(RetentionSettings(**retention))


def test_topic_retention_when_overridden_then_the_config_kafka_gets_carries_it() -> None:
    resolved = {
        rule.topic: rule for rule in topic_retention(RetentionSettings(topic_retention_ms={"ticks": 3_600_000}))
    }

    assert resolved["ticks"].config == {"retention.ms": "3600000", "retention.bytes": str(8 << 30)}


def test_operations_docs_when_the_retention_table_changes_then_kept_current() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    match = re.search(r"<!-- retention:start[^\n]*-->\n(.*?)<!-- retention:end -->", text, re.S)

    assert match, "docs/operations.md lost its retention markers"
    assert match.group(1) == retention_markdown(RetentionSettings()), (
        "run `tickwave config retention --update docs/operations.md`"
    )


def test_readme_when_the_retention_table_changes_then_its_summary_is_kept_current() -> None:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- retention-summary:start[^\n]*-->\n(.*?)<!-- retention-summary:end -->", text, re.S)

    assert match, "README.md lost its retention-summary markers"
    assert match.group(1) == retention_summary_markdown(RetentionSettings()), (
        "run `tickwave config retention --update README.md`"
    )


def test_retention_summary_when_defaults_then_every_table_mart_and_topic_appears_once_under_its_period() -> None:
    lines = retention_summary_markdown(RetentionSettings()).splitlines()[2:]
    rows = dict(tuple(cell.strip() for cell in line.strip("|").split("|")) for line in lines)
    named = [name for what in rows.values() for name in re.findall(r"`([^`]+)`", what)]
    expected = [rule.table for rule in table_retention(RetentionSettings()) + mart_retention(RetentionSettings())]

    assert sorted(named) == sorted(expected + [rule.topic for rule in topic_retention(RetentionSettings())])
    assert "`ticks`" in rows["365 days"] and "`orders`" in rows["1827 days"]
    assert next(iter(rows)) == "forever"


def test_mart_retention_when_defaults_then_every_mart_has_a_ttl_and_the_ones_reports_read_keep_five_years() -> None:
    marts = {rule.table: rule for rule in mart_retention(RetentionSettings())}
    models = {path.stem for path in (ROOT / "dbt" / "models" / "marts").glob("*.sql")}
    compliance_sql = " ".join(path.read_text() for path in (ROOT / "dbt" / "models" / "compliance").glob("*.sql"))
    read_by_reports = {name for name in models if f"ref('{name}')" in compliance_sql}

    assert set(marts) == models  # every mart once, no table of the warehouse among them
    assert not set(marts) & {rule.table for rule in table_retention(RetentionSettings())}
    assert {name for name, rule in marts.items() if rule.is_compliance} == read_by_reports
    assert {name: marts[name].days for name in read_by_reports} == dict.fromkeys(read_by_reports, 1827)
    assert len(read_by_reports) == 6
    assert all(rule.ttl is not None for rule in marts.values())
    assert marts["data_quality_daily"].ttl == "toDateTime(day) + toIntervalDay(365)"


def test_mart_retention_when_overridden_then_the_settings_apply_and_a_short_compliance_mart_is_refused() -> None:
    marts = {
        rule.table: rule.days
        for rule in mart_retention(
            RetentionSettings(compliance_days=2557, table_days={"pnl_daily": FOREVER, "risk_events_daily": 30})
        )
    }

    assert (marts["fct_fills"], marts["pnl_daily"], marts["risk_events_daily"]) == (2557, FOREVER, 30)
    with pytest.raises(ConfigurationError, match="compliance table keeps rows at least 1827 days"):
        mart_retention(RetentionSettings(table_days={"fct_orders": 365}))


def test_dbt_vars_when_built_then_mart_ttls_are_the_retention_tables() -> None:
    from orchestration.dbt_project import dbt_vars

    settings = load_settings(retention={"table_days": {"pnl_daily": 90}})

    ttls = dbt_vars(settings)["mart_ttls"]

    assert ttls == {rule.table: rule.ttl for rule in mart_retention(settings.retention)}
    assert ttls["pnl_daily"] == "toDateTime(day) + toIntervalDay(90)"
