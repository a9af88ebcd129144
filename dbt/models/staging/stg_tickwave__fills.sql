-- one row per fill (fill_id), with what the execution engine booked for it (NULL / '' on fills
-- written before the engine booked them)
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
    broker_deal_id,
    position_before_lots,
    position_after_lots,
    entry_value_after,
    realized_pnl_quote,
    realized_pnl_account,
    round_trip_id,
    opens_round_trip_id
from {{ source('tickwave', 'fills') }} final
