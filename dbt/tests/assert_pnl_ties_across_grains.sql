-- Realized P&L is the same, exactly, summed over days and over the fills the engine booked; and over
-- the closed round trips and those trips' fills (a trip still open has booked P&L of partial closes).
with fills as (
    select
        sum(realized_pnl_account - commission_account) as total,
        sumIf(realized_pnl_account - commission_account, round_trip_id in (select round_trip_id from {{ ref('fct_round_trips') }}))
            as closed
    from {{ ref('int_fills_positioned') }}
),
trips as (select sum(net_pnl_account) as total from {{ ref('fct_round_trips') }}),
days as (select sum(realized_pnl_account) as total from {{ ref('pnl_daily') }})
select fills.total as fills_total, fills.closed as fills_closed, trips.total as trips_total, days.total as days_total
from fills cross join trips cross join days
where fills_total != days_total or fills_closed != trips_total
