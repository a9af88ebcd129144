-- one row per order event (event_id): every order's lifecycle in the order it was journaled
-- (chain_id, chain_seq), the event in words, the broker's code of a rejection, the check that
-- denied an order, and the decision maker (the model version; the strategy is the model id).
select
    toDate(event_at) as report_date,
    event_at,
    chain_id,
    chain_seq,
    event_id,
    client_order_id,
    signal_id,
    symbol,
    multiIf(
        event_type = 'order_submitted.v1', 'submitted',
        event_type = 'order_accepted.v1', 'accepted',
        event_type = 'order_filled.v1' and is_final, 'filled',
        event_type = 'order_filled.v1', 'partially_filled',
        event_type = 'order_rejected.v1', 'rejected',
        event_type = 'order_canceled.v1' and startsWith(reason, 'expired: '), 'expired',
        event_type = 'order_canceled.v1', 'canceled',
        event_type = 'order_denied.v1', 'denied',
        event_type) as lifecycle_event,
    side,
    quantity_lots,
    fill_lots,
    fill_price,
    cumulative_lots,
    broker_order_id,
    broker_code,
    check_name as denied_by_check,
    reason,
    concat(model_id, ' v', toString(model_version)) as decision_maker,
    model_id as strategy_id,
    chain_hash
from {{ ref('stg_tickwave__order_events') }}
