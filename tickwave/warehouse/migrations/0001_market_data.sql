-- Market data and analytics, written by the streams component (tickwave.contracts:
-- Tick, Bar, FeatureVector, Prediction, Signal). Column names are the contract's fields;
-- every `_ms` field is a DateTime64(3, 'UTC'). Redelivery repeats rows, so each table is
-- a ReplacingMergeTree on the message's natural key: exact reads use FINAL (or argMax
-- by the key), see warehouse_server/README.md. `inserted_at` is the replacing version:
-- the latest copy of a key wins.

CREATE TABLE IF NOT EXISTS ticks
(
    symbol      LowCardinality(String),
    time_ms     DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    seq         UInt32,
    bid         Float64 CODEC(ZSTD(1)),
    ask         Float64 CODEC(ZSTD(1)),
    last        Float64 CODEC(ZSTD(1)),
    volume      Float64 CODEC(ZSTD(1)),
    flags       UInt32,
    source      LowCardinality(String),
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(time_ms)
ORDER BY (symbol, time_ms, seq)
TTL toDateTime(time_ms) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bars_1s
(
    symbol      LowCardinality(String),
    timeframe   LowCardinality(String),
    start_ms    DateTime64(3, 'UTC'),
    end_ms      DateTime64(3, 'UTC'),
    bid_open    Float64,
    bid_high    Float64,
    bid_low     Float64,
    bid_close   Float64,
    ask_open    Float64,
    ask_high    Float64,
    ask_low     Float64,
    ask_close   Float64,
    mid_open    Float64,
    mid_high    Float64,
    mid_low     Float64,
    mid_close   Float64,
    tick_count  UInt32,
    volume      Float64,
    spread_mean Float64,
    spread_max  Float64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(start_ms)
ORDER BY (symbol, start_ms)
TTL toDateTime(start_ms) + INTERVAL 90 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- Same columns as bars_1s; kept without TTL.
CREATE TABLE IF NOT EXISTS bars_1m AS bars_1s
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(start_ms)
ORDER BY (symbol, start_ms)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS features
(
    symbol       LowCardinality(String),
    timeframe    LowCardinality(String),
    bar_start_ms DateTime64(3, 'UTC'),
    values       Map(String, Nullable(Float64)),
    is_warm      Bool,
    schema_hash  LowCardinality(String),
    inserted_at  DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(bar_start_ms)
ORDER BY (symbol, timeframe, bar_start_ms)
TTL toDateTime(bar_start_ms) + INTERVAL 180 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS predictions
(
    symbol               LowCardinality(String),
    timeframe            LowCardinality(String),
    bar_start_ms         DateTime64(3, 'UTC'),
    model_id             LowCardinality(String),
    model_version        UInt32,
    probabilities        Map(String, Float64),
    inference_latency_us Float64,
    predicted_at_ms      DateTime64(3, 'UTC'),
    inserted_at          DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(bar_start_ms)
ORDER BY (symbol, timeframe, model_id, model_version, bar_start_ms)
TTL toDateTime(bar_start_ms) + INTERVAL 365 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS signals
(
    signal_id     String,
    symbol        LowCardinality(String),
    timeframe     LowCardinality(String),
    bar_start_ms  DateTime64(3, 'UTC'),
    direction     LowCardinality(String),
    strength      Float64,
    confidence    Float64,
    model_id      LowCardinality(String),
    model_version UInt32,
    created_at_ms DateTime64(3, 'UTC'),
    inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(bar_start_ms)
ORDER BY (symbol, bar_start_ms, signal_id)
SETTINGS non_replicated_deduplication_window = 1000;
