-- one row per fill and round trip it belongs to (fill_id, round_trip_id), from what the execution engine
-- booked (execution.core.positions.Book.book): no position or trip is derived here. A trip runs flat to flat
-- and is named by the fill that opened it; a fill that flips the position through zero closes its trip
-- (its realized P&L and costs are that trip's) and opens the next at its price, so it has two rows here:
-- the closing one (trip_position_after 0) and the opening one (entry_lots = the lots it opened, no P&L).
-- Fills written before the engine booked them (no round_trip_id) are left out. Lots and money are exact.
with booked as (
    select
        *,
        position_before_lots != 0 and (signed_lots > 0) != (position_before_lots > 0) as is_reducing,
        opens_round_trip_id != '' and opens_round_trip_id != round_trip_id as is_flip
    from {{ ref('fct_fills') }}
    where is_booked
),

legs as (
    -- a flip's second row (is_opening) is the trip it opens
    select *, arrayJoin(if(is_flip, [false, true], [false])) as is_opening
    from booked
)

select
    fill_id,
    if(is_opening, opens_round_trip_id, round_trip_id) as round_trip_id,
    symbol,
    side,
    price,
    quantity_lots,
    signed_lots,
    filled_at,
    model_id,
    model_version,
    position_before_lots,
    position_after_lots,
    toDecimal64(if(is_flip and not is_opening, 0, assumeNotNull(position_after_lots)), 8) as trip_position_after,
    if(position_before_lots != 0 and not is_opening, position_before_lots > 0, position_after_lots > 0) as is_long,
    toDecimal64(multiIf(is_opening, abs(position_after_lots), is_reducing, 0, abs(signed_lots)), 8) as entry_lots,
    toDecimal64(if(is_reducing and not is_opening, least(abs(position_before_lots), abs(signed_lots)), 0), 8)
        as exit_lots,
    if(is_opening, toDecimal128(0, 18), realized_pnl_quote) as realized_pnl_quote,
    if(is_opening, toDecimal128(0, 18), realized_pnl_account) as realized_pnl_account,
    if(is_opening, toDecimal128(0, 18), commission_account) as commission_account
from legs
