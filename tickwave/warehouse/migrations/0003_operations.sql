-- Operations: the model registry (the source of truth for which model serves; never in
-- memory), data-quality results, and the quarantine of rejected input (DeadLetter).

CREATE TABLE IF NOT EXISTS model_registry
(
    model_id            LowCardinality(String),
    model_version       UInt32,
    stage               LowCardinality(String),
    framework           LowCardinality(String),
    artifact_uri        String,
    artifact_sha256     String,
    feature_schema_hash String,
    metrics             Map(String, Float64),
    params              Map(String, String),
    trained_from_ms     DateTime64(3, 'UTC'),
    trained_to_ms       DateTime64(3, 'UTC'),
    created_at_ms       DateTime64(3, 'UTC'),
    updated_at_ms       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at_ms)
ORDER BY (model_id, model_version)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS dq_results
(
    run_id           String,
    dataset          LowCardinality(String),
    check_name       LowCardinality(String),
    is_success       Bool,
    observed_value   Nullable(Float64),
    element_count    UInt64,
    unexpected_count UInt64,
    details          String,
    checked_at_ms    DateTime64(3, 'UTC'),
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(checked_at_ms)
ORDER BY (dataset, check_name, checked_at_ms, run_id)
TTL toDateTime(checked_at_ms) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS quarantine
(
    dead_letter_id String,
    source         LowCardinality(String),
    reason         String,
    raw            String CODEC(ZSTD(3)),
    raw_encoding   LowCardinality(String),
    received_at_ms DateTime64(3, 'UTC'),
    symbol         LowCardinality(String),
    inserted_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(received_at_ms)
ORDER BY (source, received_at_ms, dead_letter_id)
TTL toDateTime(received_at_ms) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
