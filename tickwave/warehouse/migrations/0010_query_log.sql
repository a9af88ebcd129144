-- The warehouse's access log: one row per HTTP request (user, client address, query id,
-- the normalized query, duration, rows and bytes, exception code), written by the
-- embedded service in batches off the request path. The raw text is an EPHEMERAL input:
-- only its normalized form (literals replaced by ?) is stored. Analysts may read it;
-- nobody but the service writes it.
CREATE TABLE IF NOT EXISTS query_log
(
    event_time_ms         DateTime64(3, 'UTC'),
    query_id              String,
    user                  LowCardinality(String),
    client_address        String,
    http_method           LowCardinality(String),
    query_kind            LowCardinality(String),
    query                 String EPHEMERAL '',
    normalized_query      String DEFAULT normalizeQuery(query),
    normalized_query_hash UInt64 DEFAULT normalizedQueryHash(query),
    duration_ms           Float64,
    read_rows             UInt64,
    read_bytes            UInt64,
    written_rows          UInt64,
    written_bytes         UInt64,
    result_rows           UInt64,
    result_bytes          UInt64,
    exception_code        Int32,
    exception             String,
    inserted_at           DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(event_time_ms)
ORDER BY (event_time_ms, query_id)
TTL toDateTime(inserted_at) + INTERVAL 90 DAY
SETTINGS ttl_only_drop_parts = 1;
