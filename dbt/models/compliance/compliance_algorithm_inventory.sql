-- one row per span a model version or the execution limits were in production (inventory_id): a
-- model version from the registry event that made it champion (promoted, restored) to the next
-- event of that version (retired, rolled back; NULL while it is still champion); the execution
-- limits from each accepted limit change to the next. The report reads the rows in production at
-- the day's close (in_production_from < close and (in_production_to is NULL or >= close)): the
-- as-of-day inventory. has_passed_checks: a champion passed the promotion rules (checked_figures
-- are the figures they judged); a limit change passed the execution process's validation.
select
    concat(events.model_id, ' v', toString(events.model_version), ' @ ', events.event_id) as inventory_id,
    'model' as inventory_kind,
    concat(events.model_id, ' v', toString(events.model_version)) as subject,
    events.occurred_at as in_production_from,
    events.next_at as in_production_to,
    events.actor as approved_by,
    events.action as action,
    true as has_passed_checks,
    events.metrics as checked_figures,
    registry.artifact_sha256 as artifact_sha256,
    toNullable(registry.trained_from_at) as trained_from_at,
    toNullable(registry.trained_to_at) as trained_to_at,
    events.reason as detail
from (
    select
        *,
        leadInFrame(toNullable(occurred_at), 1, null) over (
            partition by model_id, model_version order by occurred_at, event_id
            rows between unbounded preceding and unbounded following) as next_at
    from {{ ref('stg_tickwave__model_registry_events') }}
) as events
left join {{ ref('stg_tickwave__model_registry') }} as registry
    on registry.model_id = events.model_id and registry.model_version = events.model_version
where events.to_stage = 'champion' and events.action in ('promoted', 'restored')

union all

select
    concat('execution limits @ ', risk_event_id) as inventory_id,
    'configuration' as inventory_kind,
    'execution limits' as subject,
    occurred_at as in_production_from,
    leadInFrame(toNullable(occurred_at), 1, null) over (
        order by occurred_at, risk_event_id rows between unbounded preceding and unbounded following)
        as in_production_to,
    'operator' as approved_by,
    kind as action,
    true as has_passed_checks,
    cast(map() as Map(String, Float64)) as checked_figures,
    '' as artifact_sha256,
    cast(null as Nullable(DateTime64(3, 'UTC'))) as trained_from_at,
    cast(null as Nullable(DateTime64(3, 'UTC'))) as trained_to_at,
    detail
from {{ ref('stg_tickwave__risk_events') }}
where kind = 'limit_changed'
