-- Retention (the retention table, adapters/retention.py; docs/operations.md): what a TTL needs that
-- settings cannot change. The TTLs themselves are applied from the settings after the migrations, by
-- adapters/warehouse_retention.py: a numbered file is fixed, a configured TTL is not.
--
-- `orders` records when each row arrived, like every other table, so its retention counts from
-- arrival: orders a backtest or a replay stamps with last decade's market time are not deleted on
-- arrival. Rows written before read the default until a merge writes it, which only keeps them longer.
--
-- The compliance tables drop expired data a whole monthly partition at a time (`ttl_only_drop_parts`),
-- as the market data tables do: no row is deleted before its partition's newest row has expired,
-- so records are kept at least their retention, and up to a month longer.
ALTER TABLE orders ADD COLUMN IF NOT EXISTS inserted_at DateTime64(3, 'UTC') DEFAULT now64(3);

ALTER TABLE orders MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE order_events MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE fills MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE risk_events MODIFY SETTING ttl_only_drop_parts = 1;
ALTER TABLE signals MODIFY SETTING ttl_only_drop_parts = 1;
