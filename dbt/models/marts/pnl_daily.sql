-- one row per symbol and UTC day: the realized P&L the execution engine booked on that day's fills
-- (partial closes included, net of costs), the round trips closed that day, and the unrealized P&L of
-- the position open at the day's end (positions_daily), in the account currency, exact decimals.
{{ config(order_by='(symbol, day)', ttl=retention_ttl()) }}
with realized as (
    select
        symbol,
        toDate(filled_at) as day,
        if(countIf(realized_pnl_account is null) > 0, null, sum(realized_pnl_account)) as gross_realized,
        sum(commission_account) as costs
    from {{ ref('int_fills_positioned') }}
    group by symbol, day
),

trips as (
    select symbol, exit_date as day, count() as round_trips
    from {{ ref('fct_round_trips') }}
    group by symbol, day
)

select
    positions.symbol as symbol,
    positions.day as day,
    trips.round_trips as round_trips,
    realized.gross_realized as gross_realized_pnl_account,
    realized.costs as costs_account,
    realized.gross_realized - realized.costs as realized_pnl_account,
    positions.unrealized_pnl_account as unrealized_pnl_account,
    realized.gross_realized - realized.costs + positions.unrealized_pnl_account as total_pnl_account
from {{ ref('positions_daily') }} as positions
left join realized on realized.symbol = positions.symbol and realized.day = positions.day
left join trips on trips.symbol = positions.symbol and trips.day = positions.day
