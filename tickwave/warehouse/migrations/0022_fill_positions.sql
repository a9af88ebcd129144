-- Each symbol's latest booking by the execution engine (the booked columns of `fills`, 0019): the
-- position after its last booked fill, the open lots' entry value after it, and when it was filled.
-- The trader board's Positions and P&L today panels read this table (one row per symbol once merged)
-- instead of every fill ever booked, so their cost does not grow with the fills' history.
--
-- A materialized view keeps it from every insert into `fills`: argMax by (filled_at_ms, fill_id,
-- inserted_at), the fills' sort key then their replacing version, so a fill written again (the
-- bookings' backfill, an at-least-once retry) counts once and its newest copy wins, as `fills FINAL`
-- reads it. Fills without a booking (empty round_trip_id) are left out, as everywhere else.
--
-- argMax and max give the same answer when a row is added twice: the back-fill of the fills booked
-- before this table existed (the last statement) may run again without changing any figure.
CREATE TABLE IF NOT EXISTS fill_positions
(
    symbol         LowCardinality(String),
    position_lots  AggregateFunction(argMax, Decimal(18, 8), Tuple(DateTime64(3, 'UTC'), String, DateTime64(3, 'UTC'))),
    entry_value    AggregateFunction(argMax, Decimal(38, 18), Tuple(DateTime64(3, 'UTC'), String, DateTime64(3, 'UTC'))),
    last_fill_at   SimpleAggregateFunction(max, DateTime64(3, 'UTC'))
)
ENGINE = AggregatingMergeTree
ORDER BY symbol;

CREATE MATERIALIZED VIEW IF NOT EXISTS fill_positions_mv TO fill_positions AS
SELECT symbol,
       argMaxState(assumeNotNull(position_after_lots), (filled_at_ms, fill_id, inserted_at)) AS position_lots,
       argMaxState(assumeNotNull(entry_value_after), (filled_at_ms, fill_id, inserted_at)) AS entry_value,
       max(filled_at_ms) AS last_fill_at
FROM fills
WHERE round_trip_id != ''
GROUP BY symbol;

INSERT INTO fill_positions
SELECT symbol,
       argMaxState(assumeNotNull(position_after_lots), (filled_at_ms, fill_id, inserted_at)) AS position_lots,
       argMaxState(assumeNotNull(entry_value_after), (filled_at_ms, fill_id, inserted_at)) AS entry_value,
       max(filled_at_ms) AS last_fill_at
FROM fills FINAL
WHERE round_trip_id != '' AND symbol NOT IN (SELECT DISTINCT symbol FROM fill_positions)
GROUP BY symbol;
