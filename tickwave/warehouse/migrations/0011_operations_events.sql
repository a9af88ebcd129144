-- Operational events the ops board and the reports read: service lifecycle from the
-- supervisor (started, exited, crashed, restarted, gave_up, degraded, recovered) and
-- Dagster run outcomes (one row per run, replaced as its status changes). Written by the
-- platform's own services; analysts may read them.
CREATE TABLE IF NOT EXISTS service_events
(
    event_id    String,
    event_at_ms DateTime64(3, 'UTC'),
    service     LowCardinality(String),
    event       LowCardinality(String),
    pid         UInt32,
    exit_code   Nullable(Int32),
    restarts    UInt32,
    detail      String,
    host        LowCardinality(String),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(event_at_ms)
ORDER BY (service, event_at_ms, event_id)
TTL toDateTime(event_at_ms) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS pipeline_runs
(
    run_id        String,
    job_name      LowCardinality(String),
    status        LowCardinality(String),
    partition_key String,
    asset_keys    Array(String),
    started_at_ms Nullable(DateTime64(3, 'UTC')),
    ended_at_ms   Nullable(DateTime64(3, 'UTC')),
    detail        String,
    updated_at_ms DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at_ms)
ORDER BY run_id
SETTINGS non_replicated_deduplication_window = 1000;
