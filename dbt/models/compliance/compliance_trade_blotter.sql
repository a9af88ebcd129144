-- one row per fill (fill_id): the trade blotter. Time to the millisecond (UTC), notional in the
-- quote currency and, where the symbol's base or quote is the account currency, in the account
-- currency (a cross such as EURJPY has none: converting it needs a second pair's rate).
select
    toDate(fills.filled_at) as report_date,
    fills.filled_at as filled_at,
    fills.fill_id as fill_id,
    fills.symbol as symbol,
    fills.side as side,
    fills.quantity_lots as quantity_lots,
    fills.price as price,
    round(fills.notional_quote, 2) as notional_quote,
    round(multiIf(
        endsWith(fills.symbol, '{{ var("account_currency") }}'), fills.notional_quote,
        startsWith(fills.symbol, '{{ var("account_currency") }}'), fills.quantity_lots * {{ contract_size('fills.symbol') }},
        null), 2) as notional_account,
    fills.commission as commission_account,
    fills.client_order_id as client_order_id,
    orders.broker_order_id as broker_order_id,
    fills.broker_deal_id as broker_deal_id,
    fills.signal_id as signal_id,
    fills.model_id as model_id,
    fills.model_version as model_version
from {{ ref('fct_fills') }} as fills
left join {{ ref('stg_tickwave__orders') }} as orders on orders.client_order_id = fills.client_order_id
