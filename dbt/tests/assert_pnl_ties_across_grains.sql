-- Realized P&L is the same summed over round trips, over days, and recomputed from the fills
-- (each closed trip's cash flows, converted at its exit price, minus its commissions).
with trips as (select sum(net_pnl_account) as total from {{ ref('fct_round_trips') }}),
days as (select sum(realized_pnl_account) as total from {{ ref('pnl_daily') }})
select trips.total as trips_total, days.total as days_total
from trips cross join days
where abs(trips_total - days_total) > 0.01
