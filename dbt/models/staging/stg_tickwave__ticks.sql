-- one row per tick (symbol, tick_at, seq); FINAL drops redelivered copies
select
    symbol,
    time_ms as tick_at,
    seq,
    bid,
    ask,
    (bid + ask) / 2 as mid,
    ask - bid as spread,
    volume,
    source
from {{ source('tickwave', 'ticks') }} final
