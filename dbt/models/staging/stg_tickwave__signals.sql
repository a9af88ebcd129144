-- one row per signal (signal_id)
select
    signal_id,
    symbol,
    timeframe,
    bar_start_ms as bar_start_at,
    direction,
    strength,
    confidence,
    model_id,
    model_version,
    created_at_ms as decided_at
from {{ source('tickwave', 'signals') }} final
