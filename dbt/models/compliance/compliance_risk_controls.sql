-- one row per control action (event id): pre-trade denials by control (RTS 6 art. 15: price
-- collar, max order size, max position, gross exposure, message rate, daily loss, market hours
-- and the platform's own checks), breaker trips, kill switch and flatten uses, and operator
-- overrides (set_limit, resume, reduce) with who and what changed (the detail).
-- For an operator's action: who issued it; for a kill switch or flatten: the time to halt (from the
-- command's issue to the execution process acting on it, as the process recorded it), and for a
-- flatten the closing orders it sent (counted in the order journal by their flatten-<command>- signal
-- ids) and the working orders it canceled (as the process recorded it).
select
    toDate(event_at) as report_date,
    event_at,
    event_id as control_event_id,
    'pre_trade_denial' as category,
    check_name as control,
    symbol,
    'warning' as severity,
    '' as trading_state,
    '' as issued_by,
    cast(null as Nullable(Int64)) as time_to_halt_ms,
    cast(null as Nullable(UInt64)) as closing_orders,
    cast(null as Nullable(UInt64)) as canceled_orders,
    concat(client_order_id, ': ', reason) as detail
from {{ ref('stg_tickwave__order_events') }}
where event_type = 'order_denied.v1'

union all

select
    toDate(risk.occurred_at) as report_date,
    risk.occurred_at as event_at,
    risk.risk_event_id as control_event_id,
    risk.category as category,
    if(risk.check_name = '', risk.kind, risk.check_name) as control,
    risk.symbol as symbol,
    risk.severity as severity,
    risk.trading_state as trading_state,
    if(risk.check_name = 'operator', extract(risk.detail, ' by (.+?) [(]'), '') as issued_by,
    if(risk.category in ('kill_switch', 'flatten'),
       toInt64OrNull(extract(risk.detail, '; (-?[0-9]+) ms after it was issued')), null) as time_to_halt_ms,
    if(risk.category = 'flatten', toUInt64(ifNull(flatten_orders.closing_orders, 0)), null) as closing_orders,
    if(risk.category = 'flatten', toUInt64OrNull(extract(risk.detail, 'canceling ([0-9]+) working orders')), null)
        as canceled_orders,
    risk.detail as detail
from (
    select
        *,
        multiIf(
            kind = 'flatten', 'flatten',
            kind = 'trading_state' and check_name = 'operator' and trading_state = 'HALTED', 'kill_switch',
            kind in ('limit_changed', 'limit_refused') or (kind = 'trading_state' and check_name = 'operator'), 'operator_override',
            kind in ('trading_state', 'symbol_halted'), 'breaker_trip',
            kind = 'symbol_resumed', 'operator_override',
            'other') as category,
        extract(detail, '\\[command (.+?)\\]') as command_id
    from {{ ref('stg_tickwave__risk_events') }}
    where kind in ('flatten', 'trading_state', 'limit_changed', 'limit_refused', 'symbol_halted', 'symbol_resumed')
) as risk
left join (
    select
        extract(signal_id, '^flatten-(.+)-[^-]+-[0-9]+$') as command_id,
        uniqExact(client_order_id) as closing_orders
    from {{ ref('stg_tickwave__order_events') }}
    where event_type = 'order_submitted.v1' and startsWith(signal_id, 'flatten-')
    group by command_id
    having command_id != ''
) as flatten_orders on flatten_orders.command_id = risk.command_id
