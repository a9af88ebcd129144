-- Retention counts from when a row reached the warehouse (inserted_at), not from the
-- market time it describes: replaying or back-filling last year's ticks (an MT5 export,
-- a training set) must not be deleted on arrival by a TTL on the event time.
ALTER TABLE ticks MODIFY TTL toDateTime(inserted_at) + INTERVAL 365 DAY;
ALTER TABLE bars_1s MODIFY TTL toDateTime(inserted_at) + INTERVAL 90 DAY;
ALTER TABLE features MODIFY TTL toDateTime(inserted_at) + INTERVAL 180 DAY;
ALTER TABLE predictions MODIFY TTL toDateTime(inserted_at) + INTERVAL 365 DAY;
