"""The ops board: throughput, quarantine, stream lag, inserts, data quality, models, runs, restarts, disk, freshness."""

# ruff: noqa: S608, E501 - SQL built from this module's constants and typed settings, never from input; SQL lines kept whole

from __future__ import annotations

from adapters.disk import DISK_FREE_EVENT, MEMORY_EVENT, SAMPLE_EVENTS
from adapters.warehouse.parts import ACTIVE_PARTS_SQL, PARTS_TO_DELAY_INSERT
from dashboards.dataquery import QueryFormat
from dashboards.metrics_panels import metrics_panels
from dashboards.panels import BoardSpec, Kind, PanelSpec, T
from tickwave.config import Settings

UID = "tickwave-ops"
OPS_BUDGET_MS = 250.0
# Every raw table the platform writes; all but the last two are partitioned by their event time.
PARTITIONED_BY_EVENT_TIME: tuple[str, ...] = (
    "ticks",
    "bars_1s",
    "bars_1m",
    "features",
    "predictions",
    "signals",
    "orders",
    "order_events",
    "fills",
    "risk_events",
    "dq_results",
    "quarantine",
    "service_events",
)
UNPARTITIONED: tuple[tuple[str, str], ...] = (("pipeline_runs", "updated_at_ms"), ("model_registry", "updated_at_ms"))


def freshness_sql() -> str:
    """Age in seconds of every raw table's newest row (NULL for an empty table).

    A partitioned table's newest event time is the largest ``max_time`` of its active parts
    (the partition key's min/max index, kept by the engine): no scan of 10M ticks. The two
    small unpartitioned tables are read directly.
    """
    names = ", ".join(f"'{table}'" for table in PARTITIONED_BY_EVENT_TIME)
    direct = "\n  UNION ALL\n  ".join(
        f"SELECT '{table}' AS table_name, if(count() = 0, NULL, dateDiff('second', max({column}), now())) AS age_s "
        f"FROM {table}"
        for table, column in UNPARTITIONED
    )
    return f"""SELECT * FROM (
  SELECT t.name AS table_name,
         if(p.newest < toDateTime('2000-01-01 00:00:00', 'UTC'), NULL, dateDiff('second', p.newest, now())) AS age_s
  FROM (SELECT arrayJoin([{names}]) AS name) AS t
  LEFT JOIN (
    SELECT table, max(max_time) AS newest FROM system.parts
    WHERE database = currentDatabase() AND active GROUP BY table
  ) AS p ON p.table = t.name
  UNION ALL
  {direct}
) ORDER BY table_name"""


def _flow() -> tuple[PanelSpec, ...]:
    ticks = PanelSpec(
        title="Ticks per second",
        kind=Kind.TIME_SERIES,
        sql="""SELECT $__timeInterval(start_ms) AS time, symbol, sum(tick_count) / $__interval_s AS ticks_per_s
FROM bars_1s
WHERE $__timeFilter(start_ms)
GROUP BY time, symbol
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="reqps",
        columns=(("time", T.TIME), ("symbol", T.STRING), ("ticks_per_s", T.NUMBER)),
        description="Ticks per second per symbol, from the 1-second bars' tick counts (one series per symbol).",
        budget_ms=OPS_BUDGET_MS,
    )
    lag = PanelSpec(
        title="Stream lag",
        kind=Kind.TIME_SERIES,
        sql="""SELECT $__timeInterval(start_ms) AS time, symbol,
       quantile(0.95)(dateDiff('millisecond', end_ms, inserted_at)) / 1000 AS lag_s
FROM bars_1s
WHERE $__timeFilter(start_ms)
GROUP BY time, symbol
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="s",
        columns=(("time", T.TIME), ("symbol", T.STRING), ("lag_s", T.NUMBER)),
        description="p95 per interval of the time from a 1-second bar's close to its row landing in the warehouse "
        "(the streaming pipeline's end-to-end lag, window wait included).",
        budget_ms=OPS_BUDGET_MS,
    )
    inserts = PanelSpec(
        title="Warehouse rows inserted per second",
        kind=Kind.TIME_SERIES,
        sql="""SELECT $__timeInterval(event_time_ms) AS time, sum(written_rows) / $__interval_s AS rows_per_s
FROM query_log
WHERE $__timeFilter(event_time_ms) AND written_rows > 0
GROUP BY time
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="rowsps",
        columns=(("time", T.TIME), ("rows_per_s", T.NUMBER)),
        description="Rows written per second into the warehouse, from its access log (query_log).",
        budget_ms=OPS_BUDGET_MS,
    )
    return ticks, lag, inserts


def _quarantine() -> tuple[PanelSpec, ...]:
    series = PanelSpec(
        title="Quarantined inputs",
        kind=Kind.TIME_SERIES,
        sql="""SELECT $__timeInterval(received_at_ms) AS time, source, count() AS inputs
FROM quarantine
WHERE $__timeFilter(received_at_ms)
GROUP BY time, source
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="short",
        columns=(("time", T.TIME), ("source", T.STRING), ("inputs", T.NUMBER)),
        description="Quarantined inputs and dead letters per interval, one series per source.",
        budget_ms=OPS_BUDGET_MS,
    )
    reasons = PanelSpec(
        title="Quarantine by reason",
        kind=Kind.TABLE,
        sql="""SELECT source, reason, count() AS inputs, max(received_at_ms) AS last_at
FROM quarantine FINAL
WHERE $__timeFilter(received_at_ms)
GROUP BY source, reason
ORDER BY inputs DESC
LIMIT 100""",
        format=QueryFormat.TABLE,
        unit="short",
        columns=(("source", T.STRING), ("reason", T.STRING), ("inputs", T.NUMBER), ("last_at", T.TIME)),
        description="Quarantined inputs and dead letters in the time range by source and reason.",
        budget_ms=OPS_BUDGET_MS,
    )
    return series, reasons


def _quality_and_models() -> tuple[PanelSpec, ...]:
    quality = PanelSpec(
        title="Data quality",
        kind=Kind.TABLE,
        sql="""SELECT dataset, check_name, JSONExtractString(argMax(details, checked_at_ms), 'severity') AS severity,
       argMax(is_success, checked_at_ms) AS is_success, argMax(unexpected_count, checked_at_ms) AS unexpected_rows,
       max(checked_at_ms) AS checked_at
FROM dq_results FINAL
WHERE checked_at_ms >= now() - INTERVAL 7 DAY
GROUP BY dataset, check_name
ORDER BY is_success, dataset, check_name""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(
            ("dataset", T.STRING),
            ("check_name", T.STRING),
            ("severity", T.STRING),
            ("is_success", T.NUMBER),
            ("unexpected_rows", T.NUMBER),
            ("checked_at", T.TIME),
        ),
        description="The latest outcome of every data-quality check (dq_results, last 7 days), failures first; "
        "severity blocking or warning.",
        budget_ms=OPS_BUDGET_MS,
    )
    registry = PanelSpec(
        title="Model registry",
        kind=Kind.TABLE,
        sql="""SELECT model_id, model_version, stage, framework, trained_from_ms, trained_to_ms, created_at_ms,
       metrics['holdout_accuracy'] AS holdout_accuracy, stage_changed_by, stage_reason
FROM model_registry FINAL
ORDER BY model_id, stage = 'champion' DESC, model_version DESC
LIMIT 50""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(
            ("model_id", T.STRING),
            ("model_version", T.NUMBER),
            ("stage", T.STRING),
            ("framework", T.STRING),
            ("trained_from_ms", T.TIME),
            ("trained_to_ms", T.TIME),
            ("created_at_ms", T.TIME),
            ("holdout_accuracy", T.NUMBER),
            ("stage_changed_by", T.STRING),
            ("stage_reason", T.STRING),
        ),
        description="Every model version: champion first, then candidates and retired ones; when it was trained "
        "(training window, registration time), its holdout accuracy and who changed its stage and why.",
        budget_ms=OPS_BUDGET_MS,
        width=24,
    )
    return quality, registry


def _runs() -> tuple[PanelSpec, ...]:
    runs = PanelSpec(
        title="Dagster runs",
        kind=Kind.TABLE,
        sql="""SELECT run_id, job_name, status, partition_key, started_at_ms, ended_at_ms,
       dateDiff('second', started_at_ms, ended_at_ms) AS duration_s
FROM pipeline_runs FINAL
ORDER BY coalesce(started_at_ms, updated_at_ms) DESC
LIMIT 50""",
        format=QueryFormat.TABLE,
        unit="none",
        columns=(
            ("run_id", T.STRING),
            ("job_name", T.STRING),
            ("status", T.STRING),
            ("partition_key", T.STRING),
            ("started_at_ms", T.TIME),
            ("ended_at_ms", T.TIME),
            ("duration_s", T.NUMBER),
        ),
        description="The 50 latest Dagster runs (pipeline_runs, written by the orchestration): job, status, "
        "partition, duration.",
        budget_ms=OPS_BUDGET_MS,
    )
    report = PanelSpec(
        title="Daily report",
        kind=Kind.STAT,
        sql="""SELECT argMax(status, updated_at_ms) AS status, argMax(partition_key, updated_at_ms) AS report_day,
       max(updated_at_ms) AS updated_at
FROM pipeline_runs FINAL
WHERE job_name LIKE '%report%'""",
        format=QueryFormat.TABLE,
        unit="string",
        columns=(("status", T.STRING), ("report_day", T.STRING), ("updated_at", T.TIME)),
        description="Status of the latest daily-report run (a job whose name holds 'report') and its day.",
        budget_ms=OPS_BUDGET_MS,
        width=6,
    )
    restarts = PanelSpec(
        title="Service restarts",
        kind=Kind.TABLE,
        sql=f"""SELECT service, countIf(event = 'restarted') AS restarts, countIf(event = 'crashed') AS crashes,
       countIf(event = 'gave_up') AS gave_up, max(event_at_ms) AS last_event_at, argMax(event, event_at_ms) AS last_event,
       argMax(detail, event_at_ms) AS last_detail
FROM service_events FINAL
WHERE $__timeFilter(event_at_ms) AND event NOT IN ({", ".join(f"'{event}'" for event in SAMPLE_EVENTS)})
GROUP BY service
ORDER BY restarts + crashes DESC, service""",
        format=QueryFormat.TABLE,
        unit="short",
        columns=(
            ("service", T.STRING),
            ("restarts", T.NUMBER),
            ("crashes", T.NUMBER),
            ("gave_up", T.NUMBER),
            ("last_event_at", T.TIME),
            ("last_event", T.STRING),
            ("last_detail", T.STRING),
        ),
        description="Per service in the time range: restarts, crashes and give-ups recorded by the supervisor "
        "(service_events), and its latest lifecycle event.",
        budget_ms=OPS_BUDGET_MS,
        width=18,
    )
    return runs, report, restarts


def _disk() -> PanelSpec:
    return PanelSpec(
        title="Disk free",
        kind=Kind.TIME_SERIES,
        sql=f"""SELECT $__timeInterval(event_at_ms) AS time, JSONExtractString(detail, 'volume') AS volume,
       min(JSONExtractFloat(detail, 'free_pct')) AS free_pct
FROM service_events
WHERE $__timeFilter(event_at_ms) AND event = '{DISK_FREE_EVENT}'
GROUP BY time, volume
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="percent",
        columns=(("time", T.TIME), ("volume", T.STRING), ("free_pct", T.NUMBER)),
        description="Free space of each volume holding the data (Kafka's, the warehouse's, the journal's), in "
        "percent, sampled every minute by the supervisor; the alert 'Disk space low' fires under "
        "supervision.disk_free_alert_pct.",
        budget_ms=OPS_BUDGET_MS,
        width=24,
    )


def _memory() -> PanelSpec:
    return PanelSpec(
        title="Memory per service",
        kind=Kind.TIME_SERIES,
        sql=f"""SELECT $__timeInterval(event_at_ms) AS time, service,
       max(JSONExtractFloat(detail, 'memory_mb')) * 1000000 AS memory_bytes
FROM service_events
WHERE $__timeFilter(event_at_ms) AND event = '{MEMORY_EVENT}'
GROUP BY time, service
ORDER BY time""",
        format=QueryFormat.TIME_SERIES,
        unit="decbytes",
        columns=(("time", T.TIME), ("service", T.STRING), ("memory_bytes", T.NUMBER)),
        description="Memory of each supervised service's process tree (proportional set size: a page mapped "
        "several times counts once), sampled every minute by the supervisor. A line that keeps rising over "
        "hours is a leak; `make soak` holds each below 5 MB an hour.",
        budget_ms=OPS_BUDGET_MS,
        width=12,
    )


def _parts() -> PanelSpec:
    return PanelSpec(
        title="Active parts, busiest partition per table",
        kind=Kind.TABLE,
        sql=ACTIVE_PARTS_SQL,
        format=QueryFormat.TABLE,
        unit="short",
        columns=(("table", T.STRING), ("busiest_partition_parts", T.NUMBER), ("parts", T.NUMBER)),
        description="Active parts of each warehouse table: in its busiest partition and in all. Merges keep them "
        f"down; past {PARTS_TO_DELAY_INSERT} in one partition (the engine's parts_to_delay_insert) inserts slow "
        "down, past twice that they are refused. A number that keeps rising means merges do not keep up.",
        budget_ms=OPS_BUDGET_MS,
        width=12,
    )


def _freshness() -> PanelSpec:
    return PanelSpec(
        title="Freshness of raw tables",
        kind=Kind.TABLE,
        sql=freshness_sql(),
        format=QueryFormat.TABLE,
        unit="s",
        columns=(("table_name", T.STRING), ("age_s", T.NUMBER)),
        description="Seconds since the newest row of every raw table, by its event time (from the engine's "
        "per-part min/max of the partition column; empty for an empty table).",
        budget_ms=OPS_BUDGET_MS,
        width=24,
    )


def ops_board(settings: Settings) -> BoardSpec:
    """The ops board."""
    return BoardSpec(
        uid=UID,
        title="Tickwave · Ops",
        description="Platform health: throughput, quarantine, lag, inserts, data quality, models, runs, restarts, "
        "disk.",
        refresh="30s",
        time_from="now-6h",
        panels=(*_flow(), *_quarantine(), *_quality_and_models(), *_runs(), _disk(), _memory(), _parts(), _freshness()),
        metrics_panels=metrics_panels(),
    )
