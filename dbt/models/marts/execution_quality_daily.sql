-- one row per symbol and UTC day: execution quality of that day's filled orders (incremental:
-- the months holding the last lookback_days are rebuilt, partitions replaced).
{{ config(materialized='incremental', tags=['daily'], incremental_strategy='insert_overwrite', partition_by='toYYYYMM(day)',
          order_by='(symbol, day)', ttl=retention_ttl()) }}
select
    symbol,
    day,
    count() as filled_orders,
    round(avg(slippage_bps), 4) as mean_slippage_bps,
    round(quantileExact(0.5)(slippage_bps), 4) as median_slippage_bps,
    round(quantileExact(0.95)(slippage_bps), 4) as p95_slippage_bps,
    round(avg(spread_paid_pips), 4) as mean_spread_paid_pips,
    round(avg(slippage_beyond_spread_pips), 4) as mean_slippage_beyond_spread_pips,
    quantileExact(0.5)(decision_to_fill_ms) as median_decision_to_fill_ms,
    quantileExact(0.95)(decision_to_fill_ms) as p95_decision_to_fill_ms,
    max(decision_to_fill_ms) as max_decision_to_fill_ms
from {{ ref('execution_quality') }}
{{ incremental_from('day') }}
group by symbol, day
