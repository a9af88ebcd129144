-- one row per closed position (round_trip_id = symbol + trip number): entry, exit, holding time,
-- P&L in pips and in the account currency, costs. Gross P&L is the sum of the fills' cash flows
-- (exact, in Decimal128); a trip still open is not here (see positions_daily). The account-currency
-- amounts convert at the exit: by the exit price for a symbol based in the account currency, else by
-- the quote currency's rate at the last closed minute (int_account_rates); NULL when none is known.
{{ config(order_by='(symbol, exit_at, round_trip_id)') }}
with trips as (
    select
        symbol,
        trip_number,
        trip_side,
        min(filled_at) as entry_at,
        max(filled_at) as exit_at,
        argMax(position_after, (filled_at, fill_id)) as final_position,
        round(sumIf(quantity_lots, side = trip_side), 8) as lots,
        sumIf(price * quantity_lots, side = trip_side) / sumIf(quantity_lots, side = trip_side) as entry_price,
        sumIf(price * quantity_lots, side != trip_side) / sumIf(quantity_lots, side != trip_side) as exit_price,
        sum(-signed_lots * toDecimal128(price, 10)) * toDecimal128({{ contract_size('symbol') }}, 4) as gross_pnl_quote,
        sum(commission) as costs_account,
        count() as fills,
        argMin(model_id, (filled_at, fill_id)) as model_id,
        argMin(model_version, (filled_at, fill_id)) as model_version,
        {{ quote_currency('symbol') }} as quote_currency
    from {{ ref('int_fills_positioned') }}
    group by symbol, trip_number, trip_side
),

rated as (
    select trips.*, rates.rate as quote_rate
    from trips
    asof left join {{ ref('int_account_rates') }} as rates
        on rates.currency = trips.quote_currency and trips.exit_at >= rates.rate_at
)

select
    concat(symbol, '-', toString(trip_number)) as round_trip_id,
    symbol,
    trip_number,
    if(trip_side = 'buy', 'long', 'short') as direction,
    lots,
    entry_at,
    exit_at,
    toDate(exit_at) as exit_date,
    dateDiff('millisecond', entry_at, exit_at) / 1000.0 as holding_time_s,
    entry_price,
    exit_price,
    fills,
    round(if(trip_side = 'buy', 1, -1) * (exit_price - entry_price) / {{ pip_size('symbol') }}, 4) as pnl_pips,
    round(toFloat64(gross_pnl_quote), 6) as gross_pnl_quote,
    round({{ to_account('toFloat64(gross_pnl_quote)', 'symbol', 'exit_price', 'quote_rate') }}, 6) as gross_pnl_account,
    round(costs_account, 6) as costs_account,
    round({{ to_account('toFloat64(gross_pnl_quote)', 'symbol', 'exit_price', 'quote_rate') }} - costs_account, 6) as net_pnl_account,
    model_id,
    model_version
from rated
where final_position = 0
