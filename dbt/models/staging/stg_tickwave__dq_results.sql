-- one row per expectation result (dataset, check_name, checked_at, run_id)
select
    run_id,
    dataset,
    check_name,
    is_success,
    observed_value,
    element_count,
    unexpected_count,
    JSONExtractString(details, 'severity') as severity,
    details,
    checked_at_ms as checked_at
from {{ source('tickwave', 'dq_results') }} final
