-- one row per fill (fill_id): the trade blotter. Time to the millisecond (UTC), notional in the
-- quote currency and in the account currency, converted as the marts convert P&L (to_account: by the
-- fill's own price for a symbol based in the account currency, else at the quote currency's rate of
-- the last minute closed by the fill; NULL when no rate is known).
with quoted as (
    select *, {{ quote_currency('symbol') }} as quote_currency from {{ ref('fct_fills') }}
),

rated as (
    select fills.*, rates.rate as quote_rate
    from quoted as fills
    asof left join {{ ref('int_account_rates') }} as rates
        on rates.currency = fills.quote_currency and fills.filled_at >= rates.rate_at
)

select
    toDate(fills.filled_at) as report_date,
    fills.filled_at as filled_at,
    fills.fill_id as fill_id,
    fills.symbol as symbol,
    fills.side as side,
    fills.quantity_lots as quantity_lots,
    fills.price as price,
    round(fills.notional_quote, 2) as notional_quote,
    round({{ to_account('fills.notional_quote', 'fills.symbol', 'fills.price', 'fills.quote_rate') }}, 2)
        as notional_account,
    fills.commission as commission_account,
    fills.client_order_id as client_order_id,
    orders.broker_order_id as broker_order_id,
    fills.broker_deal_id as broker_deal_id,
    fills.signal_id as signal_id,
    fills.model_id as model_id,
    fills.model_version as model_version
from rated as fills
left join {{ ref('stg_tickwave__orders') }} as orders on orders.client_order_id = fills.client_order_id
