-- one row per symbol and UTC day with orders (best-execution monitoring): fills, slippage against
-- the arrival mid (mean, p50, p95 in pips and bps), spread paid, decision-to-fill latency (p50,
-- p99), and the broker's reject and requote rates. Percentiles are exact (quantileExact), so re-runs
-- agree. A requote is a rejection whose broker code says the price moved and nothing was executed
-- (MT5 10004 requote, 10020 price changed, 10021 price off: execution/brokers/mt5.py retries these
-- up to mt5_max_retries, so a journaled one is a requote the retries did not get past).
with filled as (
    select
        symbol,
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
    group by symbol, day
),

requoted as (
    select client_order_id
    from {{ ref('stg_tickwave__order_events') }}
    where event_type = 'order_rejected.v1' and broker_code in (10004, 10020, 10021)
),

sent as (
    select
        symbol,
        toDate(submitted_at) as day,
        count() as submitted_orders,
        countIf(status = 'rejected') as rejected_orders,
        countIf(status = 'rejected' and client_order_id in (select client_order_id from requoted)) as requoted_orders
    from {{ ref('fct_orders') }}
    where submitted_at is not null
    group by symbol, day
)

select
    sent.day as report_date,
    sent.symbol as symbol,
    sent.submitted_orders as submitted_orders,
    sent.rejected_orders as rejected_orders,
    round(sent.rejected_orders / sent.submitted_orders, 6) as reject_rate,
    sent.requoted_orders as requoted_orders,
    round(sent.requoted_orders / sent.submitted_orders, 6) as requote_rate,
    filled.filled_orders as filled_orders,
    filled.slippage_mean_pips as slippage_mean_pips,
    filled.slippage_p50_pips as slippage_p50_pips,
    filled.slippage_p95_pips as slippage_p95_pips,
    filled.slippage_mean_bps as slippage_mean_bps,
    filled.slippage_p50_bps as slippage_p50_bps,
    filled.slippage_p95_bps as slippage_p95_bps,
    filled.spread_paid_mean_pips as spread_paid_mean_pips,
    filled.latency_p50_ms as latency_p50_ms,
    filled.latency_p99_ms as latency_p99_ms
from sent
left join filled on filled.symbol = sent.symbol and filled.day = sent.day
