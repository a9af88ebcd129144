-- one row per fill (fill_id), with its signed size and notional
{{ config(order_by='(symbol, filled_at, fill_id)') }}
select
    fill_id,
    client_order_id,
    signal_id,
    symbol,
    side,
    price,
    quantity_lots,
    if(side = 'buy', 1, -1) * toDecimal128(quantity_lots, 8) as signed_lots,
    price * quantity_lots * {{ contract_size('symbol') }} as notional_quote,
    commission,
    filled_at,
    toDate(filled_at) as fill_date,
    model_id,
    model_version,
    broker_deal_id
from {{ ref('stg_tickwave__fills') }}
