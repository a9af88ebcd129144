-- one row per order (client_order_id): its current state, the row with the newest updated_at_ms
select
    client_order_id,
    argMax(signal_id, updated_at_ms) as signal_id,
    argMax(symbol, updated_at_ms) as symbol,
    argMax(side, updated_at_ms) as side,
    argMax(quantity_lots, updated_at_ms) as quantity_lots,
    argMax(order_type, updated_at_ms) as order_type,
    argMax(limit_price, updated_at_ms) as limit_price,
    argMax(model_id, updated_at_ms) as model_id,
    argMax(model_version, updated_at_ms) as model_version,
    argMax(status, updated_at_ms) as status,
    argMax(broker_order_id, updated_at_ms) as broker_order_id,
    argMax(filled_lots, updated_at_ms) as filled_lots,
    argMax(average_fill_price, updated_at_ms) as average_fill_price,
    argMax(reason, updated_at_ms) as reason,
    max(venue) as venue,  -- set from the submission on every row of the order ('' on rows that predate it)
    min(created_at_ms) as created_at,
    max(updated_at_ms) as updated_at
from {{ source('tickwave', 'orders') }}
group by client_order_id
