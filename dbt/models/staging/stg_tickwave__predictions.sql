-- one row per model output (symbol, timeframe, model_id, model_version, bar_start_at); role: champion
-- (its signal traded) or challenger (scored in shadow, never traded)
select
    symbol,
    timeframe,
    bar_start_ms as bar_start_at,
    model_id,
    model_version,
    probabilities,
    probabilities['up'] as p_up,
    probabilities['down'] as p_down,
    probabilities['flat'] as p_flat,
    inference_latency_us,
    predicted_at_ms as predicted_at,
    role
from {{ source('tickwave', 'predictions') }} final
