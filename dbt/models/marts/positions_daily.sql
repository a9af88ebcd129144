-- one row per symbol and UTC day with prices or fills: the position at the day's end as the execution
-- engine booked it (exact lots: 0 when flat), the open lots' average entry price (first-in first-out,
-- at the symbol's digits, as MetaTrader shows a position's price),
-- the mark (the day's last 1 min mid close, else the last fill) and the unrealized P&L,
-- (mark x position - the open lots' entry value) x contract size, exact in the quote currency; in the
-- account currency unchanged for a symbol quoted in it, else converted at the day's end as the marts'
-- rates give it (by the symbol's own mark when the account currency is its base); NULL for an open
-- position whose quote currency has no known rate.
{{ config(order_by='(symbol, day)', ttl=retention_ttl()) }}
with booked as (
    select * from {{ ref('fct_fills') }} where is_booked
),

days as (
    select symbol, toDate(bar_start_at) as day from {{ ref('stg_tickwave__bars_1m') }} group by symbol, day
    union distinct
    select symbol, fill_date as day from booked group by symbol, day
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
        toDecimal64(ifNull(fills.position_after_lots, 0), 8) as position_lots,
        toDecimal128(ifNull(fills.entry_value_after, 0), 18) as entry_value,
        fills.price as last_fill_price
    from ends
    asof left join booked as fills
        on fills.symbol = ends.symbol and ends.day_end_at > fills.filled_at
),

marked as (
    select
        positioned.symbol as symbol,
        positioned.day as day,
        positioned.position_lots as position_lots,
        if(positioned.position_lots = 0, 0, {{ price_at_digits(
            'toFloat64(positioned.entry_value) / toFloat64(positioned.position_lots)', 'positioned.symbol') }})
            as entry_price,
        if(marks.mark_price > 0, marks.mark_price, positioned.last_fill_price) as mark_price,
        ({{ exact('mark_price') }} * positioned.position_lots - positioned.entry_value)
            * {{ exact(contract_size('positioned.symbol'), 8) }} as unrealized_quote,  -- 0 when flat: no open lots
        {{ quote_currency('positioned.symbol') }} as quote_currency,
        {{ base_currency('positioned.symbol') }} as base_currency,
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
    toDecimal128(marked.unrealized_quote, 18) as unrealized_pnl_quote,
    toDecimal128(multiIf(
        marked.position_lots = 0 or marked.mark_price <= 0, toDecimal256(0, 18),
        marked.quote_currency = '{{ var("account_currency") }}', marked.unrealized_quote,
        marked.base_currency = '{{ var("account_currency") }}', marked.unrealized_quote / {{ exact('marked.mark_price') }},
        rates.rate > 0, marked.unrealized_quote * {{ exact('rates.rate') }},
        null), 18) as unrealized_pnl_account
from marked
asof left join {{ ref('int_account_rates') }} as rates
    on rates.currency = marked.quote_currency and marked.day_end_at >= rates.rate_at
