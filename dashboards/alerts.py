"""Alert rules (Grafana unified alerting, provisioned as files): each a one-number ClickHouse query and a threshold.

Every rule's query returns one row with one numeric column ``value``; Grafana's threshold
expression fires when ``value`` passes the rule's threshold. Thresholds come from
``[dashboards]``, ``[execution]`` and ``[supervision]`` settings.
"""

# ruff: noqa: S608, E501 - SQL built from this module's constants and typed settings, never from input; SQL lines kept whole

from __future__ import annotations

from dataclasses import dataclass

from adapters.disk import DISK_FREE_EVENT, disk_low_sql
from dashboards.metrics_panels import TICK_TO_SIGNAL_P99
from dashboards.sqlparts import rollover_expression
from tickwave.config import MarketSettings, Settings
from tickwave.market import MarketCalendar


@dataclass(frozen=True)
class AlertRule:
    """One alert: a query giving ``value``, fired when ``value > threshold`` for ``pending``.

    ``sql`` is a ClickHouse query (one row, column ``value``); a rule on the processes' metrics
    has ``promql`` instead (an instant PromQL expression on the Prometheus datasource) and no SQL.
    """

    uid: str
    title: str
    sql: str
    threshold: float
    summary: str
    severity: str = "critical"
    pending: str = "0s"
    lookback_s: int = 600
    promql: str = ""


# 1 for each scrape target whose last scrape failed (down, restarting, or its metrics port held), else 0.
TARGET_DOWN = "1 - up"


def metrics_alert_rules(settings: Settings) -> tuple[AlertRule, ...]:
    """The rules on Prometheus's metrics (Grafana's, and the rule file ``tickwave up`` gives Prometheus)."""
    limit_ms = settings.dashboards.tick_to_signal_p99_ms
    return (
        AlertRule(
            uid="tickwave-tick-to-signal-p99",
            title="Tick-to-signal latency p99",
            sql="",
            promql=TICK_TO_SIGNAL_P99,
            threshold=limit_ms / 1000,
            summary=f"Signals leave over {limit_ms} ms after their bar can close (p99, 5 minutes; "
            "dashboards.tick_to_signal_p99_ms): see the ops board's latency panels.",
            pending="5m",
        ),
        AlertRule(
            uid="tickwave-target-down",
            title="Metrics target down",
            sql="",
            promql=TARGET_DOWN,
            threshold=0,
            summary=f"The /metrics of {{{{ $labels.job }}}} has not answered Prometheus for "
            f"{settings.dashboards.target_down_s} s (dashboards.target_down_s): the process is down, or its metrics "
            "are blinded; see `tickwave status` and the ops board's services panel.",
            pending=f"{settings.dashboards.target_down_s}s",
        ),
    )


def disk_low_alert_sql(alert_pct: float) -> str:
    """How many volumes' latest free-space sample (10 minutes) is under ``alert_pct`` (``adapters.disk``'s rule)."""
    low = disk_low_sql("free_bytes", "total_bytes", alert_pct)
    return (
        "SELECT count() AS value FROM ("
        "SELECT JSONExtractString(detail, 'volume') AS volume, "
        "argMax(JSONExtractUInt(detail, 'free_bytes'), event_at_ms) AS free_bytes, "
        "argMax(JSONExtractUInt(detail, 'total_bytes'), event_at_ms) AS total_bytes "
        f"FROM service_events WHERE event = '{DISK_FREE_EVENT}' AND event_at_ms >= now() - INTERVAL 10 MINUTE "
        f"GROUP BY volume) WHERE {low}"
    )


def market_open_expression(market: MarketSettings) -> str:
    """1 while the market is open now: the configured calendar (``tickwave.market``) rendered as SQL."""
    return MarketCalendar.from_settings(market).open_sql("now()")


def alert_rules(settings: Settings) -> tuple[AlertRule, ...]:
    """Every provisioned alert rule: those on the warehouse, then those on the metrics."""
    return (*warehouse_alert_rules(settings), *metrics_alert_rules(settings))


def warehouse_alert_rules(settings: Settings) -> tuple[AlertRule, ...]:
    """The rules on the warehouse (ClickHouse SQL)."""
    board = settings.dashboards
    hours, minutes = (int(part) for part in board.missing_report_alert_utc.split(":"))
    due = hours * 60 + minutes
    return (
        AlertRule(
            uid="tickwave-halted",
            title="Trading halted (kill switch)",
            sql="SELECT toUInt8(argMax(trading_state, (occurred_at_ms, risk_event_id)) = 'HALTED') AS value "
            "FROM risk_events",
            threshold=0,
            summary="Trading is HALTED (kill switch or a halting breach): see the trader board's risk events.",
        ),
        AlertRule(
            uid="tickwave-daily-loss",
            title="Daily loss limit reached",
            sql=f"WITH {rollover_expression(settings.market)} AS rollover "
            "SELECT count() AS value FROM risk_events FINAL "
            "WHERE `check` = 'daily_loss' AND occurred_at_ms >= rollover",
            threshold=0,
            summary=f"The trading day's loss reached execution.risk.daily_loss_limit ({settings.execution.risk.daily_loss_limit:g} "
            f"{settings.execution.account_currency}); trading moved to {settings.execution.risk.daily_loss_action}.",
        ),
        AlertRule(
            uid="tickwave-stale-ticks",
            title="Stale market data",
            sql=f"SELECT if({market_open_expression(settings.market)}, "
            "dateDiff('second', if(count() = 0, now() - INTERVAL 1 DAY, max(time_ms)), now()), 0) AS value "
            "FROM ticks WHERE time_ms >= now() - INTERVAL 1 DAY",
            threshold=board.stale_data_s,
            summary=f"No tick for over {board.stale_data_s} s while the market is open.",
        ),
        AlertRule(
            uid="tickwave-quarantine-spike",
            title="Quarantine spike",
            sql="SELECT count() AS value FROM quarantine WHERE received_at_ms >= now() - INTERVAL 5 MINUTE",
            threshold=board.quarantine_spike,
            summary=f"Over {board.quarantine_spike} inputs quarantined within 5 minutes: see the ops board.",
            severity="warning",
        ),
        AlertRule(
            uid="tickwave-stream-lag",
            title="Stream lag",
            sql="SELECT ifNotFinite(quantile(0.95)(dateDiff('millisecond', end_ms, inserted_at)) / 1000, 0) AS value "
            "FROM bars_1s WHERE start_ms >= now() - INTERVAL 5 MINUTE",
            threshold=board.stream_lag_s,
            summary=f"1-second bars reach the warehouse over {board.stream_lag_s} s after they close (p95, 5 min).",
            pending="1m",
        ),
        AlertRule(
            uid="tickwave-blocking-quality",
            title="Blocking quality check failed",
            sql="SELECT count() AS value FROM ("
            "SELECT argMax(is_success, checked_at_ms) AS ok, "
            "JSONExtractString(argMax(details, checked_at_ms), 'severity') AS severity "
            "FROM dq_results FINAL WHERE checked_at_ms >= now() - INTERVAL 1 DAY GROUP BY dataset, check_name"
            ") WHERE NOT ok AND severity = 'blocking'",
            threshold=0,
            summary="A blocking data-quality check failed its latest run: downstream assets are held back.",
        ),
        AlertRule(
            uid="tickwave-disk-low",
            title="Disk space low",
            sql=disk_low_alert_sql(settings.supervision.disk_free_alert_pct),
            threshold=0,
            summary=f"A volume holding Tickwave's data has under {settings.supervision.disk_free_alert_pct:g} % free "
            "(supervision.disk_free_alert_pct): see the ops board's disk panel and `tickwave status`.",
        ),
        AlertRule(
            uid="tickwave-missing-report",
            title="Daily report missing",
            sql=f"SELECT toUInt8(now() >= toStartOfDay(now()) + INTERVAL {due} MINUTE AND countIf("
            "job_name LIKE '%report%' AND status = 'SUCCESS' AND (partition_key = toString(yesterday()) "
            "OR (partition_key = '' AND updated_at_ms >= toStartOfDay(now())))) = 0) AS value "
            "FROM pipeline_runs FINAL",
            threshold=0,
            summary=f"No successful daily report for yesterday by {board.missing_report_alert_utc} UTC.",
            severity="warning",
        ),
    )
