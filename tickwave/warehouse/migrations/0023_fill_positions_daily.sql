-- Each symbol's last booking of each UTC day (the booked columns of `fills`, 0019), kept as
-- fill_positions (0022) is, by a materialized view on `fills`, one row per symbol and day once
-- merged. The P&L today panel finds a symbol's position and entry value at the day's rollover
-- from the days before the rollover's UTC day here, then the fills of that day up to the rollover:
-- one row per symbol per trading day read, not every fill booked. The rollover is a setting, so
-- the days are UTC days and the panel reads the part of a day before its rollover from `fills`.
--
-- argMax and max give the same answer when a row is added twice: the back-fill below skips the
-- days the view has already written, and may run again without changing any figure.
CREATE TABLE IF NOT EXISTS fill_positions_daily
(
    symbol         LowCardinality(String),
    day            Date,
    position_lots  AggregateFunction(argMax, Decimal(18, 8), Tuple(DateTime64(3, 'UTC'), String, DateTime64(3, 'UTC'))),
    entry_value    AggregateFunction(argMax, Decimal(38, 18), Tuple(DateTime64(3, 'UTC'), String, DateTime64(3, 'UTC'))),
    last_fill_at   SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY (symbol, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS fill_positions_daily_mv TO fill_positions_daily AS
SELECT symbol,
       toDate(filled_at_ms) AS day,
       argMaxState(assumeNotNull(position_after_lots), (filled_at_ms, fill_id, inserted_at)) AS position_lots,
       argMaxState(assumeNotNull(entry_value_after), (filled_at_ms, fill_id, inserted_at)) AS entry_value,
       max(filled_at_ms) AS last_fill_at
FROM fills
WHERE round_trip_id != ''
GROUP BY symbol, day;

INSERT INTO fill_positions_daily
SELECT symbol,
       toDate(filled_at_ms) AS day,
       argMaxState(assumeNotNull(position_after_lots), (filled_at_ms, fill_id, inserted_at)) AS position_lots,
       argMaxState(assumeNotNull(entry_value_after), (filled_at_ms, fill_id, inserted_at)) AS entry_value,
       max(filled_at_ms) AS last_fill_at
FROM fills FINAL
WHERE round_trip_id != '' AND (symbol, toDate(filled_at_ms)) NOT IN (SELECT symbol, day FROM fill_positions_daily)
GROUP BY symbol, day;
