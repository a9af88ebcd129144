-- one row per symbol and UTC day: the position at the day's close, its mark and unrealized P&L.
select
    day as report_date,
    symbol,
    position_lots,
    mark_price,
    unrealized_pnl_account
from {{ ref('positions_daily') }}
