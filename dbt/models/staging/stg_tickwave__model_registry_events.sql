-- one row per registry change (event_id): registration, promotion, refusal, retirement, rollback, restore
select
    event_id,
    model_id,
    model_version,
    action,
    from_stage,
    to_stage,
    actor,
    reason,
    metrics,
    occurred_at_ms as occurred_at
from {{ source('tickwave', 'model_registry_events') }} final
