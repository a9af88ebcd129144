"""The Grafana boards and alert rules section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tickwave.config.base import HH_MM, Section
from tickwave.config.orchestration import REPORTS_SCHEDULE_UTC, after_the_reports_schedule


class DashboardsSettings(Section):
    """Grafana boards as code (``tickwave dashboards build | push``): refresh, alert thresholds, contact point."""

    refresh: Literal["1s", "2s", "5s"] = Field(default="5s", description="trader board auto-refresh (1-5 s)")
    folder: str = Field(default="Tickwave", description="Grafana folder the boards and alert rules go into")
    datasource_name: str = Field(default="Tickwave ClickHouse", description="name of the provisioned datasource")
    password_env: str = Field(
        default="CLICKHOUSE_ANALYST_PASSWORD",
        pattern=r"^[A-Z][A-Z0-9_]*$",
        description="environment variable of Grafana's process holding the analyst's password (never written)",
    )
    query_timeout_s: int = Field(
        default=30, ge=1, description="datasource query timeout (max_execution_time; at most the analyst's limit)"
    )
    row_limit: int = Field(
        default=100_000, ge=1, description="datasource row limit (the plugin's `limit` setting; at most the analyst's)"
    )
    webhook_url: str | None = Field(
        default=None, description="alert contact point (webhook URL); unset: alert rules only, no contact point"
    )
    prometheus_url: str = Field(
        default="http://127.0.0.1:9090", description="the Prometheus the provisioned Prometheus datasource reads"
    )
    prometheus_datasource_name: str = Field(default="Tickwave Prometheus", description="its datasource's name")
    tick_to_signal_p99_ms: int = Field(
        default=15, ge=1, description="alert: tick-to-signal latency p99 over 5 minutes above this (ms)"
    )
    stale_data_s: int = Field(default=60, ge=1, description="alert: no tick for this long in market hours (s)")
    target_down_s: int = Field(
        default=60,
        ge=1,
        description="alert: a process's /metrics has not answered Prometheus's scrapes for this long (up == 0), s",
    )
    stream_lag_s: int = Field(default=30, ge=1, description="alert: bars reach the warehouse this late (s)")
    quarantine_spike: int = Field(default=100, ge=1, description="alert: quarantined inputs within 5 minutes")
    missing_report_alert_utc: str = Field(
        default="06:00",
        pattern=HH_MM,
        description=f"alert: the daily report is still missing at this time (UTC; after {REPORTS_SCHEDULE_UTC}; the "
        "Dagster sensor records the day late earlier, at orchestration.late_reports_sensor_utc)",
    )

    _report_due_after_schedule = field_validator("missing_report_alert_utc")(after_the_reports_schedule)
