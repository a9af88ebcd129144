-- one row per change that reached production (change_id): model registry changes (registration,
-- promotion, refusal, retirement, rollback, restore: who or what approved it and the metrics it
-- passed) and configuration changes of the execution process (set_limit, accepted or refused).
-- has_passed_checks: true for a promotion or restore (the promotion rules passed) and an accepted
-- limit change, false for a refused promotion or limit change, NULL for the rest (registration,
-- retirement, rollback); checked_figures are the figures the promotion rules judged.
select
    toDate(occurred_at) as report_date,
    occurred_at as changed_at,
    event_id as change_id,
    'model' as change_kind,
    concat(model_id, ' v', toString(model_version)) as subject,
    action,
    concat(from_stage, ' -> ', to_stage) as change,
    to_stage,
    actor as approved_by,
    action in ('rolled_back', 'restored') as is_rollback,
    multiIf(action in ('promoted', 'restored'), true, action = 'promotion_refused', false, null) as has_passed_checks,
    metrics as checked_figures,
    reason as detail
from {{ ref('stg_tickwave__model_registry_events') }}

union all

select
    toDate(occurred_at) as report_date,
    occurred_at as changed_at,
    risk_event_id as change_id,
    'configuration' as change_kind,
    'execution limits' as subject,
    kind as action,
    detail as change,
    '' as to_stage,
    'operator' as approved_by,
    false as is_rollback,
    kind = 'limit_changed' as has_passed_checks,
    cast(map() as Map(String, Float64)) as checked_figures,
    detail
from {{ ref('stg_tickwave__risk_events') }}
where kind in ('limit_changed', 'limit_refused')
