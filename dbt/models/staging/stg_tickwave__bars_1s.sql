-- one row per 1s bar (symbol, bar_start_at); FINAL drops re-emitted windows
select
    symbol,
    timeframe,
    start_ms as bar_start_at,
    end_ms as bar_end_at,
    bid_close,
    ask_close,
    mid_open,
    mid_high,
    mid_low,
    mid_close,
    tick_count,
    volume,
    spread_mean,
    spread_max
from {{ source('tickwave', 'bars_1s') }} final
