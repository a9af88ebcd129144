-- one row per fill (fill_id): the symbol's position before and after it, and the round trip it belongs to.
-- A round trip runs from flat to flat: a fill from a flat position opens the next one. A fill that
-- flips the position through zero stays in the trip it started from (that trip then never closes).
with positioned as (
    select
        *,
        sum(signed_lots) over by_symbol as position_after
    from {{ ref('fct_fills') }}
    window by_symbol as (partition by symbol order by filled_at, fill_id rows between unbounded preceding and current row)
),

numbered as (
    select
        *,
        position_after - signed_lots as position_before,
        sum(if(position_after - signed_lots = 0, 1, 0)) over by_symbol as trip_number
    from positioned
    window by_symbol as (partition by symbol order by filled_at, fill_id rows between unbounded preceding and current row)
),

sided as (
    select
        *,
        first_value(side) over by_trip as trip_side
    from numbered
    window by_trip as (partition by symbol, trip_number order by filled_at, fill_id rows between unbounded preceding and current row)
)

select
    *,
    round(sum(if(side = trip_side, quantity_lots, 0)) over by_trip, 8) as trip_entry_lots,
    round(sum(if(side = trip_side, price * quantity_lots, 0)) over by_trip, 10) as trip_entry_cost
from sided
window by_trip as (partition by symbol, trip_number order by filled_at, fill_id rows between unbounded preceding and current row)
