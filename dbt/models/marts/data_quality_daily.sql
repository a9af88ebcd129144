-- one row per UTC day, dataset and check: runs, failed runs, rows flagged, the latest outcome and
-- the check's severity (blocking or warning), from dq_results (incremental).
{{ config(materialized='incremental', tags=['daily'], incremental_strategy='insert_overwrite', partition_by='toYYYYMM(day)',
          order_by='(day, dataset, check_name)', ttl=retention_ttl()) }}
select
    toDate(checked_at) as day,
    dataset,
    check_name,
    any(severity) as severity,
    uniqExact(run_id) as runs,
    countIf(not is_success) as failures,
    sum(unexpected_count) as unexpected_rows,
    argMax(is_success, checked_at) as is_latest_success,
    max(checked_at) as last_checked_at
from {{ ref('stg_tickwave__dq_results') }}
{{ incremental_from('toDate(checked_at)') }}
group by day, dataset, check_name
