-- one row per fill (fill_id)
select
    fill_id,
    client_order_id,
    signal_id,
    symbol,
    side,
    price,
    quantity_lots,
    commission,
    filled_at_ms as filled_at,
    model_id,
    model_version,
    broker_deal_id
from {{ source('tickwave', 'fills') }} final
