-- Model drift and decay (models/drift.py, the hourly Dagster asset model_drift): one row per
-- champion and measurement: each model input's PSI of the live window against the champion's
-- training window, the live predictions' log loss and accuracy beside the holdout's, and whether
-- they ask for retraining (and why). Analysts and the ops board read it; model_performance_daily
-- carries each day's largest PSI.
CREATE TABLE IF NOT EXISTS model_drift
(
    model_id         LowCardinality(String),
    model_version    UInt32,
    timeframe        LowCardinality(String),
    window_from_ms   DateTime64(3, 'UTC'),
    window_to_ms     DateTime64(3, 'UTC'),
    training_rows    UInt64,
    live_rows        UInt64,
    psi              Map(String, Float64),
    max_psi          Float64,
    worst_input      String,
    live_scored      UInt64,
    live_log_loss    Nullable(Float64),
    live_accuracy    Nullable(Float64),
    holdout_log_loss Nullable(Float64),
    holdout_accuracy Nullable(Float64),
    is_retrain_due   Bool,
    reasons          String,
    measured_at_ms   DateTime64(3, 'UTC'),
    inserted_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(measured_at_ms)
ORDER BY (model_id, model_version, measured_at_ms)
TTL toDateTime(measured_at_ms) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;
