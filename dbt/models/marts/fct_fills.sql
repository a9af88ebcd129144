-- one row per fill (fill_id), with its signed size, notional and what the execution engine booked for
-- it: the symbol's position before and after (exact lots), the open lots' entry value after it, the
-- realized P&L in the quote and account currencies, the round trip it belongs to and the one it opens
-- (execution/README.md, "What each fill books"). Lots and money are exact decimals.
{{ config(order_by='(symbol, filled_at, fill_id)', ttl=retention_ttl()) }}
select
    fill_id,
    client_order_id,
    signal_id,
    symbol,
    side,
    price,
    quantity_lots,
    ifNull(position_after_lots - position_before_lots,
           if(side = 'buy', 1, -1) * toDecimal64({{ exact('quantity_lots', 8) }}, 8)) as signed_lots,
    price * quantity_lots * {{ contract_size('symbol') }} as notional_quote,
    commission,
    toDecimal128({{ exact('commission') }}, 18) as commission_account,
    filled_at,
    toDate(filled_at) as fill_date,
    model_id,
    model_version,
    broker_deal_id,
    round_trip_id != '' as is_booked,
    position_before_lots,
    position_after_lots,
    entry_value_after,
    realized_pnl_quote,
    realized_pnl_account,
    round_trip_id,
    opens_round_trip_id
from {{ ref('stg_tickwave__fills') }}
