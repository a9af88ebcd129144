-- one row per closed round trip (round_trip_id), dated by its exit: the daily summary's P&L curve
-- is the running sum of net_pnl_account over the day's exits.
select
    toDate(exit_at) as report_date,
    exit_at,
    round_trip_id,
    symbol,
    direction,
    net_pnl_account
from {{ ref('fct_round_trips') }}
