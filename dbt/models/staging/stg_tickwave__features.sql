-- one row per feature vector (symbol, timeframe, bar_start_at)
select
    symbol,
    timeframe,
    bar_start_ms as bar_start_at,
    values as feature_values,
    is_warm,
    schema_hash
from {{ source('tickwave', 'features') }} final
