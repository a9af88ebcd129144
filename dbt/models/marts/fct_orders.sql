-- one row per order (client_order_id): every lifecycle timestamp, final state, fill price, the venue it was sent to
-- ('' for orders that predate the venue), the signal, the model version
{{ config(order_by='client_order_id', ttl=retention_ttl()) }}
with orders as (
    select * from {{ ref('stg_tickwave__orders') }}
),

events as (
    select
        client_order_id,
        minIfOrNull(event_at, event_type = 'order_submitted.v1') as submitted_at,
        minIfOrNull(event_at, event_type = 'order_accepted.v1') as accepted_at,
        minIfOrNull(event_at, event_type = 'order_rejected.v1') as rejected_at,
        minIfOrNull(event_at, event_type = 'order_filled.v1') as first_fill_at,
        maxIfOrNull(event_at, event_type = 'order_filled.v1' and is_final) as filled_at,
        minIfOrNull(event_at, event_type = 'order_canceled.v1') as canceled_at
    from {{ ref('stg_tickwave__order_events') }}
    group by client_order_id
),

signals as (
    select signal_id, direction, strength, confidence, timeframe, bar_start_at, decided_at
    from {{ ref('stg_tickwave__signals') }}
)

select
    orders.client_order_id as client_order_id,
    orders.signal_id as signal_id,
    orders.symbol as symbol,
    orders.side as side,
    orders.order_type as order_type,
    orders.quantity_lots as quantity_lots,
    orders.filled_lots as filled_lots,
    orders.status as status,
    orders.average_fill_price as average_fill_price,
    orders.reason as reason,
    orders.venue as venue,
    orders.model_id as model_id,
    orders.model_version as model_version,
    signals.direction as signal_direction,
    signals.strength as signal_strength,
    signals.confidence as signal_confidence,
    signals.timeframe as signal_timeframe,
    signals.bar_start_at as signal_bar_start_at,
    signals.decided_at as decided_at,
    orders.created_at as created_at,
    events.submitted_at as submitted_at,
    events.accepted_at as accepted_at,
    events.rejected_at as rejected_at,
    events.first_fill_at as first_fill_at,
    events.filled_at as filled_at,
    events.canceled_at as canceled_at,
    orders.updated_at as updated_at
from orders
left join events on events.client_order_id = orders.client_order_id
left join signals on signals.signal_id = orders.signal_id
