-- one row per filled order (client_order_id): its venue, arrival quote (the last tick at or before submission,
-- no older than arrival_lookback_days), fill price, slippage against the arrival mid in pips and bps
-- (positive = paid), the half spread paid, slippage beyond the spread, and the decision-to-fill latency
-- (incremental: the months holding the last lookback_days are rebuilt, partitions replaced; the ASOF join
-- reads only those orders' ticks, from arrival_lookback_days before the first of them to the last).
{{ config(materialized='incremental', incremental_strategy='insert_overwrite', partition_by='toYYYYMM(day)',
          order_by='(symbol, submitted_at, client_order_id)', ttl=retention_ttl(),
          pre_hook="{{ partition_by_month('day') }}") }}
with filled as (
    select client_order_id, symbol, venue, side, filled_lots, average_fill_price, decided_at, submitted_at, filled_at
    from {{ ref('fct_orders') }}
    where filled_lots > 0 and submitted_at is not null
),

orders as (
    select * from filled
    {{ incremental_from('toDate(submitted_at)') }}
),

-- the ticks an arrival quote can come from: the orders' symbols, from the look-back before the first order
-- to the last one (the sort key's range: a run over a month reads that month's ticks, not the history's)
ticks as (
    select symbol, tick_at, bid, ask
    from {{ ref('stg_tickwave__ticks') }}
    where symbol in (select distinct symbol from orders)
      and tick_at >= (select min(submitted_at) from orders) - toIntervalDay({{ var('arrival_lookback_days') }})
      and tick_at <= (select max(submitted_at) from orders)
),

quoted as (
    select
        orders.*,
        ticks.bid as arrival_bid,
        ticks.ask as arrival_ask,
        ticks.tick_at as arrival_tick_at
    from orders
    asof left join ticks
        on ticks.symbol = orders.symbol and assumeNotNull(orders.submitted_at) >= ticks.tick_at
)

select
    client_order_id,
    symbol,
    venue,
    side,
    filled_lots,
    toDate(submitted_at) as day,
    decided_at,
    assumeNotNull(submitted_at) as submitted_at,
    filled_at,
    arrival_tick_at,
    (arrival_bid + arrival_ask) / 2 as arrival_mid,
    average_fill_price as fill_price,
    round(if(side = 'buy', 1, -1) * (average_fill_price - arrival_mid) / {{ pip_size('symbol') }}, 4) as slippage_pips,
    round(if(side = 'buy', 1, -1) * (average_fill_price - arrival_mid) / arrival_mid * 10000, 4) as slippage_bps,
    round((arrival_ask - arrival_bid) / 2 / {{ pip_size('symbol') }}, 4) as spread_paid_pips,
    round(slippage_pips - spread_paid_pips, 4) as slippage_beyond_spread_pips,
    dateDiff('millisecond', decided_at, filled_at) as decision_to_fill_ms
from quoted
-- a quote older than the look-back is no arrival quote, whether the run is a full build or an incremental one
where arrival_bid > 0
  and arrival_tick_at >= assumeNotNull(submitted_at) - toIntervalDay({{ var('arrival_lookback_days') }})
