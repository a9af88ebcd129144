-- one row per symbol and UTC day: realized P&L (round trips closed that day, net of costs) and
-- unrealized P&L (the position open at the day's end), in the account currency.
{{ config(order_by='(symbol, day)') }}
with realized as (
    select
        symbol,
        exit_date as day,
        count() as round_trips,
        sum(gross_pnl_account) as gross_realized,
        sum(costs_account) as costs,
        sum(net_pnl_account) as net_realized
    from {{ ref('fct_round_trips') }}
    group by symbol, day
)

select
    positions.symbol as symbol,
    positions.day as day,
    realized.round_trips as round_trips,
    round(realized.gross_realized, 6) as gross_realized_pnl_account,
    round(realized.costs, 6) as costs_account,
    round(realized.net_realized, 6) as realized_pnl_account,
    positions.unrealized_pnl_account as unrealized_pnl_account,
    round(realized.net_realized + positions.unrealized_pnl_account, 6) as total_pnl_account
from {{ ref('positions_daily') }} as positions
left join realized on realized.symbol = positions.symbol and realized.day = positions.day
