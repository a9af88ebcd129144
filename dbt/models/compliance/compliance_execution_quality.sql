-- one row per UTC day, symbol and venue with orders (best-execution monitoring, judged per venue as in
-- RTS 27/28): fills, slippage against the arrival mid (mean, p50, p95 in pips and bps), spread paid,
-- decision-to-fill latency (p50, p99), and the venue's reject and requote rates. The venue is where the
-- orders were sent (`paper`, `mt5:<trade server>`); orders journaled before it was recorded show as
-- 'unknown'. Percentiles are exact (quantileExact), so re-runs agree. A requote is a rejection whose
-- broker code says the price moved and nothing was executed (MT5 10004 requote, 10020 price changed,
-- 10021 price off: execution/brokers/mt5.py retries these up to mt5_max_retries, so a journaled one is
-- a requote the retries did not get past).
with filled as (
    select
        symbol,
        if(venue = '', 'unknown', venue) as order_venue,  -- not `as venue`: a cyclic alias
        day,
        count() as filled_orders,
        round(avg(slippage_pips), 4) as slippage_mean_pips,
        round(quantileExactLow(0.5)(slippage_pips), 4) as slippage_p50_pips,
        round(quantileExactLow(0.95)(slippage_pips), 4) as slippage_p95_pips,
        round(avg(slippage_bps), 4) as slippage_mean_bps,
        round(quantileExactLow(0.5)(slippage_bps), 4) as slippage_p50_bps,
        round(quantileExactLow(0.95)(slippage_bps), 4) as slippage_p95_bps,
        round(avg(spread_paid_pips), 4) as spread_paid_mean_pips,
        quantileExactLow(0.5)(decision_to_fill_ms) as latency_p50_ms,
        quantileExactLow(0.99)(decision_to_fill_ms) as latency_p99_ms
    from {{ ref('execution_quality') }}
    group by symbol, order_venue, day
),

requoted as (
    select client_order_id
    from {{ ref('stg_tickwave__order_events') }}
    where event_type = 'order_rejected.v1' and broker_code in (10004, 10020, 10021)
),

sent as (
    select
        symbol,
        if(venue = '', 'unknown', venue) as order_venue,
        toDate(submitted_at) as day,
        count() as submitted_orders,
        countIf(status = 'rejected') as rejected_orders,
        countIf(status = 'rejected' and client_order_id in (select client_order_id from requoted)) as requoted_orders
    from {{ ref('fct_orders') }}
    where submitted_at is not null
    group by symbol, order_venue, day
)

select
    sent.day as report_date,
    sent.symbol as symbol,
    sent.order_venue as venue,
    sent.submitted_orders as submitted_orders,
    sent.rejected_orders as rejected_orders,
    round(sent.rejected_orders / sent.submitted_orders, 6) as reject_rate,
    sent.requoted_orders as requoted_orders,
    round(sent.requoted_orders / sent.submitted_orders, 6) as requote_rate,
    coalesce(filled.filled_orders, 0) as filled_orders,
    -- a venue without fills has no figures (null, not the 0 a left join fills in without join_use_nulls)
    if(filled.filled_orders > 0, filled.slippage_mean_pips, null) as slippage_mean_pips,
    if(filled.filled_orders > 0, filled.slippage_p50_pips, null) as slippage_p50_pips,
    if(filled.filled_orders > 0, filled.slippage_p95_pips, null) as slippage_p95_pips,
    if(filled.filled_orders > 0, filled.slippage_mean_bps, null) as slippage_mean_bps,
    if(filled.filled_orders > 0, filled.slippage_p50_bps, null) as slippage_p50_bps,
    if(filled.filled_orders > 0, filled.slippage_p95_bps, null) as slippage_p95_bps,
    if(filled.filled_orders > 0, filled.spread_paid_mean_pips, null) as spread_paid_mean_pips,
    if(filled.filled_orders > 0, filled.latency_p50_ms, null) as latency_p50_ms,
    if(filled.filled_orders > 0, filled.latency_p99_ms, null) as latency_p99_ms
from sent
left join filled on filled.symbol = sent.symbol and filled.order_venue = sent.order_venue and filled.day = sent.day
