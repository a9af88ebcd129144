-- one row per symbol and UTC day with prices or fills: the position at the day's end, the open
-- trip's average entry price, the mark (the day's last 1 min mid close, else the last fill) and the
-- unrealized P&L in the quote and account currencies (converted as fct_round_trips does, at the day's
-- end; NULL for an open position whose quote currency has no known rate).
{{ config(order_by='(symbol, day)') }}
with days as (
    select symbol, toDate(bar_start_at) as day from {{ ref('stg_tickwave__bars_1m') }} group by symbol, day
    union distinct
    select symbol, fill_date as day from {{ ref('fct_fills') }} group by symbol, day
),

marks as (
    select symbol, toDate(bar_start_at) as day, argMax(mid_close, bar_start_at) as mark_price
    from {{ ref('stg_tickwave__bars_1m') }}
    group by symbol, day
),

ends as (
    select symbol, day, toDateTime64(day + 1, 3, 'UTC') as day_end_at from days
),

positioned as (
    select
        ends.symbol as symbol,
        ends.day as day,
        fills.position_after as position_after,
        fills.price as last_fill_price,
        if(fills.trip_entry_lots > 0, fills.trip_entry_cost / fills.trip_entry_lots, 0) as entry_price
    from ends
    asof left join {{ ref('int_fills_positioned') }} as fills
        on fills.symbol = ends.symbol and ends.day_end_at > fills.filled_at
),

marked as (
    select
        positioned.symbol as symbol,
        positioned.day as day,
        toFloat64(positioned.position_after) as position_lots,
        if(positioned.position_after = 0, 0, positioned.entry_price) as entry_price,
        if(marks.mark_price > 0, marks.mark_price, positioned.last_fill_price) as mark_price,
        {{ quote_currency('positioned.symbol') }} as quote_currency,
        toDateTime64(positioned.day + 1, 3, 'UTC') as day_end_at
    from positioned
    left join marks on marks.symbol = positioned.symbol and marks.day = positioned.day
)

select
    marked.symbol as symbol,
    marked.day as day,
    marked.position_lots as position_lots,
    marked.entry_price as entry_price,
    marked.mark_price as mark_price,
    round(marked.position_lots * (marked.mark_price - marked.entry_price) * {{ contract_size('marked.symbol') }}, 6)
        as unrealized_pnl_quote,
    round(if(marked.position_lots = 0 or marked.mark_price <= 0, 0,
             {{ to_account('unrealized_pnl_quote', 'marked.symbol', 'marked.mark_price', 'rates.rate') }}), 6)
        as unrealized_pnl_account
from marked
asof left join {{ ref('int_account_rates') }} as rates
    on rates.currency = marked.quote_currency and marked.day_end_at >= rates.rate_at
