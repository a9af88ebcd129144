-- one row per closed round trip (round_trip_id: the fill that opened it), from flat to flat as the
-- execution engine booked it (int_fills_positioned): entry, exit, holding time, lots, P&L in pips, and
-- the realized P&L in the quote and account currencies as the engine booked each fill (summed, exact
-- decimals; the account amounts converted by the engine at each fill's live mids; NULL when the engine
-- knew no rate). A trip still open is not here (see positions_daily), nor one whose opening fill is not
-- booked (stored before the engine booked fills, on a symbol the backfill refused): its figures would
-- lack that fill (execution/README.md, "Fills stored before the engine booked them"). trip_number counts the symbol's
-- trips in the order they opened (for display; the key is round_trip_id). Entry and exit prices are the
-- lot-weighted averages of the trip's entry and exit legs (exact sums, shown as Float64).
{{ config(order_by='(symbol, exit_at, round_trip_id)', ttl=retention_ttl()) }}
with trips as (
    select
        round_trip_id,
        any(symbol) as symbol,
        any(is_long) as is_long,
        min(filled_at) as entry_at,
        max(filled_at) as exit_at,
        argMax(trip_position_after, (filled_at, fill_id, exit_lots)) as final_position,
        sum(entry_lots) as lots,
        max(fill_id = round_trip_id) as is_opening_booked,
        toFloat64(sum(entry_lots * {{ exact('price') }}) / nullIf(sum(entry_lots), 0)) as entry_price,
        toFloat64(sum(exit_lots * {{ exact('price') }}) / nullIf(sum(exit_lots), 0)) as exit_price,
        sum(realized_pnl_quote) as gross_pnl_quote,
        if(countIf(realized_pnl_account is null) > 0, null, sum(realized_pnl_account)) as gross_pnl_account,
        sum(commission_account) as costs_account,
        count() as fills,
        argMin(model_id, (filled_at, fill_id)) as model_id,
        argMin(model_version, (filled_at, fill_id)) as model_version
    from {{ ref('int_fills_positioned') }}
    group by round_trip_id
),

numbered as (
    select
        *,
        row_number() over (partition by symbol order by entry_at, round_trip_id) as trip_number
    from trips
)

select
    round_trip_id,
    symbol,
    trip_number,
    if(is_long, 'long', 'short') as direction,
    lots,
    entry_at,
    exit_at,
    toDate(exit_at) as exit_date,
    dateDiff('millisecond', entry_at, exit_at) / 1000.0 as holding_time_s,
    entry_price,
    exit_price,
    fills,
    round(if(is_long, 1, -1) * (exit_price - entry_price) / {{ pip_size('symbol') }}, 4) as pnl_pips,
    gross_pnl_quote,
    gross_pnl_account,
    costs_account,
    gross_pnl_account - costs_account as net_pnl_account,
    model_id,
    model_version
from numbered
where final_position = 0 and is_opening_booked
