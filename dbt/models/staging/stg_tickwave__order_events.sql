-- one row per order event (event_id)
select
    event_id,
    event_type,
    client_order_id,
    signal_id,
    symbol,
    model_id,
    model_version,
    event_at_ms as event_at,
    side,
    quantity_lots,
    broker_order_id,
    reason,
    `check` as check_name,
    fill_id,
    fill_price,
    fill_lots,
    cumulative_lots,
    is_final
from {{ source('tickwave', 'order_events') }} final
