"""The boards as JSON: they load into the SDK's models, match their golden snapshots, and every panel is complete."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard, prometheus

from dashboards import dataquery
from dashboards.board import dashboard_json, render
from dashboards.build import boards, build, build_files
from dashboards.dataquery import DATASOURCE_UID, PLUGIN_TYPE, PROMETHEUS_TYPE, PROMETHEUS_UID, ClickHouseQuery
from dashboards.panels import BoardSpec, Kind
from dashboards.trader import trader_board
from tickwave.config import Settings

GOLDEN = Path(__file__).parents[2] / "fixtures" / "dashboards"
# Refresh the snapshots with: UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/dashboards -q
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
BOARDS = boards(Settings())


def _ids(board: BoardSpec) -> str:
    return board.uid


@pytest.mark.parametrize("board", BOARDS, ids=_ids)
def test_board_when_built_then_matches_its_golden_snapshot(board: BoardSpec) -> None:
    text = render(dashboard_json(board))
    golden = GOLDEN / f"{board.uid}.json"
    if UPDATE:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8"), f"{board.uid} changed: review, then UPDATE_GOLDEN=1"


@pytest.mark.parametrize("board", BOARDS, ids=_ids)
def test_board_json_when_loaded_into_the_sdk_then_round_trips(board: BoardSpec) -> None:
    dataquery.register()
    data = dashboard_json(board)

    loaded = dashboard.Dashboard.from_json(data)
    again: dict[str, Any] = json.loads(json.dumps(loaded, cls=JSONEncoder))

    targets = [target for panel in loaded.panels or [] for target in getattr(panel, "targets", None) or []]
    assert targets and all(isinstance(target, ClickHouseQuery | prometheus.Dataquery) for target in targets)
    assert sum(isinstance(target, prometheus.Dataquery) for target in targets) == sum(
        len(spec.queries) for spec in board.metrics_panels
    )
    # The SDK's AnnotationTarget only models Grafana's own annotation store: it keeps no SQL,
    # so annotations are compared without their targets (checked against the spec below).
    for document in (data, again):
        for annotation in document["annotations"].get("list", []):
            annotation.pop("target", None)
    assert again == data


@pytest.mark.parametrize("board", BOARDS, ids=_ids)
def test_every_panel_has_datasource_query_unit_and_title(board: BoardSpec) -> None:
    data = dashboard_json(board)
    titles = [panel["title"] for panel in data["panels"]]

    assert len(titles) == len(set(titles)) == len(board.panels) + len(board.metrics_panels)
    on_metrics = {spec.title: spec for spec in board.metrics_panels}
    for panel in data["panels"]:
        name = panel.get("title")
        assert name, panel
        if name in on_metrics:  # the Prometheus datasource: a PromQL query per series
            assert panel["datasource"] == {"type": PROMETHEUS_TYPE, "uid": PROMETHEUS_UID}, name
            assert [target["expr"] for target in panel["targets"]] == [q for _, q in on_metrics[name].queries], name
            assert panel["fieldConfig"]["defaults"]["unit"] and panel["description"], name
            continue
        assert panel["datasource"]["type"] == PLUGIN_TYPE, name
        assert panel["fieldConfig"]["defaults"]["unit"], name
        assert panel["description"], name
        [target] = panel["targets"]
        assert target["rawSql"].strip().upper().startswith(("SELECT", "WITH")), name
        assert target["datasource"]["type"] == PLUGIN_TYPE and target["editorType"] == "sql", name
        assert target["format"] in (0, 1), name
        assert panel["type"] in {kind.value for kind in Kind}, name
    for annotation, spec in zip(data["annotations"].get("list", []), board.annotations, strict=True):
        assert annotation["datasource"]["type"] == PLUGIN_TYPE
        assert annotation["target"]["rawSql"] == spec.sql


def test_trader_board_when_built_then_has_refresh_range_symbol_variable_and_annotations() -> None:
    settings = Settings(dashboards={"refresh": "1s"})
    trader = dashboard_json(trader_board(settings))

    assert trader["refresh"] == "1s"
    assert trader["time"] == {"from": "now-1h", "to": "now"}
    [variable] = trader["templating"]["list"]
    assert variable["name"] == "symbol" and variable["query"].split(",") == list(settings.symbols)
    assert [item["name"] for item in trader["annotations"]["list"]] == ["Signals", "Fills"]
    kinds = {panel["title"]: panel["type"] for panel in trader["panels"]}
    assert kinds["Price"] == "candlestick"
    assert kinds["Tick-to-signal latency"] == kinds["Signal-to-fill latency"] == "heatmap"


def test_build_when_run_twice_then_writes_identical_files_and_no_password(tmp_path: Path) -> None:
    secret = "s3cret-never-written"
    settings = Settings(clickhouse={"analyst_password": secret}, dashboards={"webhook_url": "https://hooks.example/x"})

    first = build(settings, tmp_path / "a")
    second = build(settings, tmp_path / "a")

    assert first.written == second.written
    texts = {name: (tmp_path / "a" / name).read_text() for name in first.written}
    assert "provisioning/alerting/tickwave-contact-points.yaml" in texts
    assert not any(secret in text for text in texts.values())
    assert "$CLICKHOUSE_ANALYST_PASSWORD" in texts["provisioning/datasources/tickwave.yaml"]
    assert build_files(settings) == build_files(settings)


def test_datasource_when_timeout_exceeds_the_analyst_limit_then_refused() -> None:
    from tickwave.errors import ConfigurationError

    settings = Settings(clickhouse={"analyst_max_execution_time_s": 10}, dashboards={"query_timeout_s": 30})
    with pytest.raises(ConfigurationError, match="query_timeout_s"):
        build_files(settings)


def test_alert_rules_when_provisioned_then_every_issue_alert_with_query_threshold_and_contact_point() -> None:
    import yaml

    from dashboards.provisioning import alert_rules_document, render_yaml

    settings = Settings(dashboards={"stale_data_s": 45, "webhook_url": "https://hooks.example/x"})
    files, _ = build_files(settings)

    [group] = yaml.safe_load(render_yaml(alert_rules_document(settings)))["groups"]
    rules = {rule["uid"]: rule for rule in group["rules"]}
    assert set(rules) == {
        "tickwave-halted",
        "tickwave-daily-loss",
        "tickwave-stale-ticks",
        "tickwave-quarantine-spike",
        "tickwave-stream-lag",
        "tickwave-blocking-quality",
        "tickwave-disk-low",
        "tickwave-missing-report",
        "tickwave-tick-to-signal-p99",
        "tickwave-target-down",
    }
    for rule in rules.values():
        query, threshold = rule["data"]
        assert rule["condition"] == threshold["refId"] == "C" and threshold["model"]["expression"] == "A"
        if query["datasourceUid"] == PROMETHEUS_UID:
            assert query["model"]["expr"].startswith(("histogram_quantile", "1 - up")), rule["uid"]
            continue
        assert query["datasourceUid"] == DATASOURCE_UID and query["model"]["rawSql"].startswith(("SELECT", "WITH"))
    assert rules["tickwave-stale-ticks"]["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [45]
    contact = yaml.safe_load(files["provisioning/alerting/tickwave-contact-points.yaml"])
    assert contact["contactPoints"][0]["receivers"][0]["settings"]["url"] == "https://hooks.example/x"
    assert contact["policies"][0]["receiver"] == contact["contactPoints"][0]["name"]


@pytest.mark.parametrize(("currency", "places"), [("USD", 2), ("JPY", 0), ("KWD", 3)])
def test_trader_board_when_money_is_in_the_account_currency_then_shown_at_its_minor_unit(
    currency: str, places: int
) -> None:
    settings = Settings.model_validate({"execution": {"account_currency": currency}})
    panels = {panel["title"]: panel for panel in dashboard_json(trader_board(settings))["panels"]}

    decimals = {
        (title, override["matcher"]["options"]): [p["value"] for p in override["properties"] if p["id"] == "decimals"]
        for title in ("P&L today", "Last fills")
        for override in panels[title]["fieldConfig"]["overrides"]
    }

    assert decimals == {("P&L today", "commission_today"): [places], ("Last fills", "commission"): [places]}


def test_ops_board_when_built_then_prometheus_panels_sit_beside_the_warehouse_panels_with_a_p99_alert() -> None:
    from dashboards.alerts import TARGET_DOWN, alert_rules
    from dashboards.metrics_panels import TICK_TO_SIGNAL_P99
    from dashboards.provisioning import datasource_document, prometheus_rules_document, rule_document

    settings = Settings()
    ops = next(board for board in BOARDS if board.uid == "tickwave-ops")
    types = {document["type"] for document in datasource_document(settings)["datasources"]}
    rule, down = [rule for rule in alert_rules(settings) if rule.promql]
    grafana = rule_document(rule)["data"][0]
    prometheus, prometheus_down = prometheus_rules_document(settings)["groups"][0]["rules"]

    assert ops.panels and ops.metrics_panels
    assert types == {PLUGIN_TYPE, PROMETHEUS_TYPE}
    assert any("histogram_quantile" in query for spec in ops.metrics_panels for _, query in spec.queries)
    assert rule.promql == TICK_TO_SIGNAL_P99 == grafana["model"]["expr"] and grafana["datasourceUid"] == PROMETHEUS_UID
    assert prometheus["expr"] == f"({TICK_TO_SIGNAL_P99}) > {settings.dashboards.tick_to_signal_p99_ms / 1000}"
    assert rule_document(down)["data"][0]["model"]["expr"] == down.promql == TARGET_DOWN
    assert prometheus_down["expr"] == f"({TARGET_DOWN}) > 0" and prometheus_down["for"] == "60s"
