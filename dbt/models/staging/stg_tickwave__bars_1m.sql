-- one row per 1m bar (symbol, bar_start_at)
{{ stg_bars('bars_1m') }}
