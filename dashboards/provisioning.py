"""Grafana provisioning files: the ClickHouse datasource, the dashboard provider, alert rules and contact point.

The datasource file holds the URL and user from Tickwave's configuration; the password is
a reference to an environment variable of Grafana's process (``$CLICKHOUSE_ANALYST_PASSWORD``
by default), which Grafana expands when it reads the file: the secret is never written.
Over HTTPS the file says ``secure`` and, when the warehouse has a CA of its own
(``clickhouse.ca_file`` or the generated one), carries that CA's certificate (public) in
``tlsCACert`` with ``tlsAuthWithCACert``, so the plugin verifies against it; verification is
never skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from adapters.warehouse.address import configured_address
from dashboards.alerts import AlertRule, alert_rules, metrics_alert_rules
from dashboards.dataquery import DATASOURCE_UID, PLUGIN_TYPE, PROMETHEUS_TYPE, PROMETHEUS_UID, QueryFormat
from tickwave.config import Settings
from tickwave.errors import ConfigurationError

FOLDER_UID = "tickwave"
RULE_GROUP = "tickwave"
CONTACT_POINT = "tickwave-webhook"


def datasource_document(settings: Settings) -> dict[str, Any]:
    """The datasource provisioning document (HTTP protocol, the read-only analyst, no secret)."""
    board, clickhouse = settings.dashboards, settings.clickhouse
    if board.query_timeout_s > clickhouse.analyst_max_execution_time_s:
        raise ConfigurationError(
            f"dashboards.query_timeout_s={board.query_timeout_s} exceeds the analyst's limit "
            f"clickhouse.analyst_max_execution_time_s={clickhouse.analyst_max_execution_time_s}"
        )
    if board.row_limit > clickhouse.analyst_max_result_rows:
        raise ConfigurationError(
            f"dashboards.row_limit={board.row_limit} exceeds clickhouse.analyst_max_result_rows="
            f"{clickhouse.analyst_max_result_rows}"
        )
    address = configured_address(settings)
    json_data: dict[str, Any] = {
        "host": address.host,
        "port": address.port,
        "protocol": "http",
        "secure": address.is_secure,
        "username": clickhouse.analyst_user,
        "defaultDatabase": clickhouse.database,
        "dialTimeout": "10",
        "queryTimeout": str(board.query_timeout_s),
        "rowLimit": board.row_limit,
    }
    if address.path:
        json_data["path"] = f"/{address.path}"
    secure_json_data = {"password": f"${board.password_env}"}
    if address.ca_file is not None:
        json_data["tlsAuthWithCACert"] = True
        secure_json_data["tlsCACert"] = _read_ca(address.ca_file)
    return {
        "apiVersion": 1,
        "datasources": [
            {
                "name": board.datasource_name,
                "uid": DATASOURCE_UID,
                "type": PLUGIN_TYPE,
                "editable": False,
                "jsonData": json_data,
                "secureJsonData": secure_json_data,
            },
            {  # the processes' metrics, scraped by the Prometheus `tickwave up` writes a configuration for
                "name": board.prometheus_datasource_name,
                "uid": PROMETHEUS_UID,
                "type": PROMETHEUS_TYPE,
                "access": "proxy",
                "url": board.prometheus_url,
                "editable": False,
            },
        ],
    }


def _read_ca(ca_file: Path) -> str:
    try:
        return ca_file.read_text(encoding="ascii")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read the warehouse's CA {ca_file} for Grafana ({exc}): with a generated one, start the "
            "warehouse once first"
        ) from exc


def dashboard_provider_document(dashboards_path: Path, folder: str) -> dict[str, Any]:
    """The dashboard provider: Grafana loads every JSON file under ``dashboards_path`` into ``folder``."""
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "tickwave",
                "orgId": 1,
                "folder": folder,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": False,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 30,
                "options": {"path": str(dashboards_path), "foldersFromFilesStructure": False},
            }
        ],
    }


def rule_document(rule: AlertRule) -> dict[str, Any]:
    """One rule in the file-provisioning shape: query A (ClickHouse), threshold C (server-side expression)."""
    query: dict[str, Any] = {
        "refId": "A",
        "relativeTimeRange": {"from": rule.lookback_s, "to": 0},
        "datasourceUid": DATASOURCE_UID,
        "model": {
            "refId": "A",
            "editorType": "sql",
            "format": int(QueryFormat.TABLE),
            "queryType": "table",
            "rawSql": rule.sql,
            "datasource": {"type": PLUGIN_TYPE, "uid": DATASOURCE_UID},
        },
    }
    if rule.promql:
        query["datasourceUid"] = PROMETHEUS_UID
        query["model"] = {
            "refId": "A",
            "expr": rule.promql,
            "instant": True,
            "datasource": {"type": PROMETHEUS_TYPE, "uid": PROMETHEUS_UID},
        }
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": "C",
        "data": [
            query,
            {
                "refId": "C",
                "datasourceUid": "__expr__",
                "model": {
                    "refId": "C",
                    "type": "threshold",
                    "expression": "A",
                    "datasource": {"type": "__expr__", "uid": "__expr__"},
                    "conditions": [{"evaluator": {"type": "gt", "params": [rule.threshold]}}],
                },
            },
        ],
        "noDataState": "NoData",
        "execErrState": "Error",
        "for": rule.pending,
        "annotations": {"summary": rule.summary},
        "labels": {"severity": rule.severity, "team": "tickwave"},
        "isPaused": False,
    }


def alert_rules_document(settings: Settings) -> dict[str, Any]:
    """Every alert rule in one group, evaluated every 30 s."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": RULE_GROUP,
                "folder": settings.dashboards.folder,
                "interval": "30s",
                "rules": [rule_document(rule) for rule in alert_rules(settings)],
            }
        ],
    }


def contact_points_document(webhook_url: str) -> dict[str, Any]:
    """The webhook contact point and the policy routing Tickwave's alerts to it."""
    return {
        "apiVersion": 1,
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": [
                    {
                        "uid": CONTACT_POINT,
                        "type": "webhook",
                        "settings": {"url": webhook_url, "httpMethod": "POST"},
                        "disableResolveMessage": False,
                    }
                ],
            }
        ],
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname"],
                "group_wait": "10s",
                "group_interval": "1m",
                "repeat_interval": "4h",
            }
        ],
    }


def render_yaml(document: dict[str, Any]) -> str:
    """Deterministic YAML (keys sorted, block style)."""
    text: str = yaml.safe_dump(document, sort_keys=True, default_flow_style=False, allow_unicode=True, width=120)
    return text


def prometheus_rules_document(settings: Settings) -> dict[str, Any]:
    """Prometheus's own rule file: the rules on the metrics, the same expressions and thresholds as Grafana's."""
    return {
        "groups": [
            {
                "name": RULE_GROUP,
                "rules": [
                    {
                        "alert": rule.uid,
                        "expr": f"({rule.promql}) > {rule.threshold}",
                        "for": rule.pending,
                        "labels": {"severity": rule.severity, "team": "tickwave"},
                        "annotations": {"summary": rule.summary},
                    }
                    for rule in metrics_alert_rules(settings)
                ],
            }
        ]
    }
