-- one row per risk event (risk_event_id)
select
    risk_event_id,
    kind,
    severity,
    trading_state,
    detail,
    occurred_at_ms as occurred_at,
    symbol,
    `check` as check_name
from {{ source('tickwave', 'risk_events') }} final
