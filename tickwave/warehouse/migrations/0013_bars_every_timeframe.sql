-- Bars at every MetaTrader 5 timeframe, one table per timeframe like bars_1s and bars_1m
-- (warehouse_server/README.md says why: no data moves, every reader keeps its table,
-- and each timeframe gets its own retention and partitioning). Same columns, engine and
-- key as bars_1m; retention counts from arrival (as 0009), longer for coarser bars.
CREATE TABLE IF NOT EXISTS bars_5m AS bars_1m
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(start_ms)
ORDER BY (symbol, start_ms)
TTL toDateTime(inserted_at) + INTERVAL 730 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bars_15m AS bars_1m
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(start_ms)
ORDER BY (symbol, start_ms)
TTL toDateTime(inserted_at) + INTERVAL 1095 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

CREATE TABLE IF NOT EXISTS bars_30m AS bars_1m
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(start_ms)
ORDER BY (symbol, start_ms)
TTL toDateTime(inserted_at) + INTERVAL 1825 DAY
SETTINGS non_replicated_deduplication_window = 1000, ttl_only_drop_parts = 1;

-- Hourly and coarser bars are small (24 or fewer a day per symbol): kept, partitioned by year.
CREATE TABLE IF NOT EXISTS bars_1h AS bars_1m
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYear(start_ms)
ORDER BY (symbol, start_ms)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS bars_4h AS bars_1m
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYear(start_ms)
ORDER BY (symbol, start_ms)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS bars_1d AS bars_1m
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYear(start_ms)
ORDER BY (symbol, start_ms)
SETTINGS non_replicated_deduplication_window = 1000;
