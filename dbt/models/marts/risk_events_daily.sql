-- one row per UTC day and check: pre-trade denials (order_denied events), halts (trading state
-- HALTED or a symbol halted) and kill-switch uses (an operator's HALTED), with the time from the
-- command to the halt (parsed from the event's "N ms after it was issued"). Aliases never reuse a
-- column's name: ClickHouse resolves WHERE against SELECT aliases first.
{{ config(order_by='(day, check_name)', ttl=retention_ttl()) }}
with denials as (
    select toDate(event_at) as day, check_name, 'denial' as event_kind, cast(null, 'Nullable(Int64)') as time_to_halt_ms
    from {{ ref('stg_tickwave__order_events') }}
    where event_type = 'order_denied.v1'
),

halts as (
    select
        toDate(occurred_at) as day,
        check_name,
        if(kind = 'trading_state' and check_name = 'operator', 'kill_switch', 'halt') as event_kind,
        toInt64OrNull(extract(detail, '(\\d+) ms after it was issued')) as time_to_halt_ms
    from {{ ref('stg_tickwave__risk_events') }}
    where (kind = 'trading_state' and trading_state = 'HALTED') or kind = 'symbol_halted'
)

select
    day,
    check_name,
    countIf(event_kind = 'denial') as denials,
    countIf(event_kind in ('halt', 'kill_switch')) as halts,
    countIf(event_kind = 'kill_switch') as kill_switch_uses,
    maxIf(time_to_halt_ms, event_kind = 'kill_switch') as max_time_to_halt_ms
from (select * from denials union all select * from halts)
group by day, check_name
