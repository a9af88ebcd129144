{#- One staging shape for every bar table: renames only; FINAL drops re-emitted windows. -#}
{% macro stg_bars(source_table) %}
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
from {{ source('tickwave', source_table) }} final
{% endmacro %}
