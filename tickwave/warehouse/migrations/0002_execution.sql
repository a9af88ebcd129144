-- The execution audit trail (tickwave.contracts: order events, Fill, RiskEvent), kept
-- without TTL. `orders` holds one row per order and state change; the newest
-- `updated_at_ms` of a `client_order_id` is its current state (FINAL or argMax).
-- `order_events` is the event-sourced history: one row per event, the message itself
-- in `payload`, its typed fields in columns (empty or NULL where a type lacks them).

CREATE TABLE IF NOT EXISTS orders
(
    client_order_id    String,
    signal_id          String,
    symbol             LowCardinality(String),
    side               LowCardinality(String),
    quantity_lots      Float64,
    order_type         LowCardinality(String),
    limit_price        Nullable(Float64),
    model_id           LowCardinality(String),
    model_version      UInt32,
    status             LowCardinality(String),
    broker_order_id    String,
    filled_lots        Float64,
    average_fill_price Nullable(Float64),
    reason             String,
    created_at_ms      DateTime64(3, 'UTC'),
    updated_at_ms      DateTime64(3, 'UTC'),
    INDEX idx_signal_id signal_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(updated_at_ms)
PARTITION BY toYYYYMM(created_at_ms)
ORDER BY (symbol, created_at_ms, client_order_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS order_events
(
    event_id        String,
    event_type      LowCardinality(String),
    client_order_id String,
    signal_id       String,
    symbol          LowCardinality(String),
    model_id        LowCardinality(String),
    model_version   UInt32,
    event_at_ms     DateTime64(3, 'UTC'),
    side            LowCardinality(String),
    quantity_lots   Nullable(Float64),
    order_type      LowCardinality(String),
    limit_price     Nullable(Float64),
    broker_order_id String,
    reason          String,
    broker_code     Nullable(Int32),
    `check`         LowCardinality(String),
    fill_id         String,
    fill_price      Nullable(Float64),
    fill_lots       Nullable(Float64),
    cumulative_lots Nullable(Float64),
    is_final        Nullable(Bool),
    payload         String CODEC(ZSTD(3)),
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_client_order_id client_order_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(event_at_ms)
ORDER BY (symbol, event_at_ms, event_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS fills
(
    fill_id         String,
    client_order_id String,
    signal_id       String,
    symbol          LowCardinality(String),
    side            LowCardinality(String),
    price           Float64,
    quantity_lots   Float64,
    commission      Float64,
    filled_at_ms    DateTime64(3, 'UTC'),
    model_id        LowCardinality(String),
    model_version   UInt32,
    broker_deal_id  String,
    inserted_at     DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_client_order_id client_order_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(filled_at_ms)
ORDER BY (symbol, filled_at_ms, fill_id)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS risk_events
(
    risk_event_id  String,
    kind           LowCardinality(String),
    severity       LowCardinality(String),
    trading_state  LowCardinality(String),
    detail         String,
    occurred_at_ms DateTime64(3, 'UTC'),
    symbol         LowCardinality(String),
    `check`        LowCardinality(String),
    inserted_at    DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(occurred_at_ms)
ORDER BY (occurred_at_ms, risk_event_id)
SETTINGS non_replicated_deduplication_window = 1000;
