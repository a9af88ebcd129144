-- one row per 1s bar (symbol, bar_start_at)
{{ stg_bars('bars_1s') }}
