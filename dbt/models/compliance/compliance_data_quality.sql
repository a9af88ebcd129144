-- one row per UTC day, dataset and check: the data-quality results of the day.
select
    toDate(checked_at) as report_date,
    dataset,
    check_name,
    any(severity) as severity,
    uniqExact(run_id) as runs,
    countIf(not is_success) as failures,
    sum(unexpected_count) as unexpected_rows,
    argMax(is_success, checked_at) as is_latest_success
from {{ ref('stg_tickwave__dq_results') }}
group by report_date, dataset, check_name
