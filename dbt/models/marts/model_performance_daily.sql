-- one row per UTC day, model_id, timeframe, model_version and role (champion, or challenger scored in
-- shadow on the same bars): predictions made, how many could be scored (the bar the label horizon
-- ahead exists), accuracy, hit rate and log loss of the predictions against what happened over the
-- horizon (the registry's horizon_bars and dead_zone_bps), calibration (mean confidence minus
-- accuracy), the live figures beside the walk-forward holdout's, and the day's input drift (the
-- largest PSI measured, its input, whether retraining was due: model_drift) (incremental). `slot` is
-- the model id naming the champion slot the version is in now: a challenger of another model id
-- (lgbm_direction challenging the ensemble_direction champion) keeps its own model_id and carries
-- its champion's slot. Champion and challengers of a slot (slot, timeframe) side by side:
-- `tickwave models compare`.
{{ config(materialized='incremental', tags=['daily'], incremental_strategy='insert_overwrite', partition_by='toYYYYMM(day)',
          order_by='(model_id, timeframe, model_version, role, day)', on_schema_change='append_new_columns',
          ttl=retention_ttl()) }}
with registry as (
    select
        model_id,
        model_version,
        stage,
        slot,
        horizon_bars,
        dead_zone_bps,
        metrics['holdout_accuracy'] as holdout_accuracy,
        metrics['holdout_precision'] as holdout_hit_rate
    from {{ ref('stg_tickwave__model_registry') }}
),

drift as (
    select
        toDate(measured_at) as day,
        model_id,
        model_version,
        max(max_psi) as max_input_psi,
        argMax(worst_input, max_psi) as most_drifted_input,
        max(is_retrain_due) as is_retrain_due
    from {{ ref('stg_tickwave__model_drift') }}
    group by day, model_id, model_version
),

predictions as (
    select
        predictions.*,
        toDate(predictions.bar_start_at) as day,
        predictions.timeframe as slot_timeframe,  -- bars have a timeframe too: named apart for the joins below
        registry.horizon_bars as horizon_bars,
        registry.dead_zone_bps as dead_zone_bps,
        predictions.bar_start_at + toIntervalSecond(registry.horizon_bars * {{ timeframe_seconds('predictions.timeframe') }})
            as target_at,
        multiIf(p_up >= p_down and p_up >= p_flat, 'up', p_down >= p_flat, 'down', 'flat') as predicted,
        greatest(p_up, p_down, p_flat) as confidence
    from {{ ref('stg_tickwave__predictions') }} as predictions
    inner join registry
        on registry.model_id = predictions.model_id and registry.model_version = predictions.model_version
    {{ incremental_from('toDate(predictions.bar_start_at)') }}
),

-- only the bars the predictions are scored on: of their timeframes, from their first bar to their last
-- target; a run over a month reads that month's bars, not the whole history's (twice, once per join)
bars as (
    select symbol, timeframe, bar_start_at, mid_close from {{ ref('stg_tickwave__bars_1s') }}
    where timeframe in (select distinct timeframe from predictions)
      and bar_start_at >= (select min(bar_start_at) from predictions)
      and bar_start_at <= (select max(target_at) from predictions)
    union all
    select symbol, timeframe, bar_start_at, mid_close from {{ ref('stg_tickwave__bars_1m') }}
    where timeframe in (select distinct timeframe from predictions)
      and bar_start_at >= (select min(bar_start_at) from predictions)
      and bar_start_at <= (select max(target_at) from predictions)
),

scored as (
    select
        predictions.*,
        now_bar.mid_close as mid_now,
        later_bar.mid_close as mid_later,
        mid_now > 0 and mid_later > 0 as is_scored,
        (mid_later - mid_now) / mid_now * 10000 as move_bps,
        multiIf(move_bps > dead_zone_bps, 'up', move_bps < -dead_zone_bps, 'down', 'flat') as actual,
        -- the log loss of this prediction: minus the log of the probability it gave what happened
        -log(greatest(multiIf(actual = 'up', p_up, actual = 'down', p_down, p_flat), 1e-15)) as row_log_loss
    from predictions
    left join bars as now_bar
        on now_bar.symbol = predictions.symbol and now_bar.timeframe = predictions.timeframe
        and now_bar.bar_start_at = predictions.bar_start_at
    left join bars as later_bar
        on later_bar.symbol = predictions.symbol and later_bar.timeframe = predictions.timeframe
        and later_bar.bar_start_at = predictions.target_at
)

select
    scored.day as day,
    scored.model_id as model_id,
    scored.slot_timeframe as timeframe,
    scored.model_version as model_version,
    scored.role as role,
    any(registry.stage) as stage,
    any(registry.slot) as slot,
    count() as predictions,
    countIf(is_scored) as scored_predictions,
    countIf(is_scored and predicted != 'flat') as directional_predictions,
    round(countIf(is_scored and predicted = actual) / nullIf(countIf(is_scored), 0), 6) as accuracy,
    round(countIf(is_scored and predicted != 'flat' and predicted = actual)
          / nullIf(countIf(is_scored and predicted != 'flat'), 0), 6) as hit_rate,
    round(avgIf(row_log_loss, is_scored), 6) as log_loss,
    round(avgIf(confidence, is_scored), 6) as mean_confidence,
    round(mean_confidence - accuracy, 6) as calibration_gap,
    any(registry.holdout_accuracy) as holdout_accuracy,
    any(registry.holdout_hit_rate) as holdout_hit_rate,
    round(accuracy - holdout_accuracy, 6) as accuracy_vs_holdout,
    round(hit_rate - holdout_hit_rate, 6) as hit_rate_vs_holdout,
    round(any(drift.max_input_psi), 6) as max_input_psi,
    any(drift.most_drifted_input) as most_drifted_input,
    toBool(any(drift.is_retrain_due)) as is_retrain_due
from scored
inner join registry on registry.model_id = scored.model_id and registry.model_version = scored.model_version
left join drift
    on drift.day = scored.day and drift.model_id = scored.model_id and drift.model_version = scored.model_version
group by day, model_id, timeframe, model_version, role
