-- one row per control action (event id): pre-trade denials by control (RTS 6 art. 15: price
-- collar, max order size, max position, gross exposure, message rate, daily loss, market hours
-- and the platform's own checks), breaker trips, kill switch and flatten uses, and operator
-- overrides (set_limit, resume, reduce) with who (in the detail) and what changed.
select
    toDate(event_at) as report_date,
    event_at,
    event_id as control_event_id,
    'pre_trade_denial' as category,
    check_name as control,
    symbol,
    'warning' as severity,
    '' as trading_state,
    concat(client_order_id, ': ', reason) as detail
from {{ ref('stg_tickwave__order_events') }}
where event_type = 'order_denied.v1'

union all

select
    toDate(occurred_at) as report_date,
    occurred_at as event_at,
    risk_event_id as control_event_id,
    multiIf(
        kind = 'flatten', 'flatten',
        kind = 'trading_state' and check_name = 'operator' and trading_state = 'HALTED', 'kill_switch',
        kind in ('limit_changed', 'limit_refused') or (kind = 'trading_state' and check_name = 'operator'), 'operator_override',
        kind in ('trading_state', 'symbol_halted'), 'breaker_trip',
        kind = 'symbol_resumed', 'operator_override',
        'other') as category,
    if(check_name = '', kind, check_name) as control,
    symbol,
    severity,
    trading_state,
    detail
from {{ ref('stg_tickwave__risk_events') }}
where kind in ('flatten', 'trading_state', 'limit_changed', 'limit_refused', 'symbol_halted', 'symbol_resumed')
