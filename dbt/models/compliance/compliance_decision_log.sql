-- one row per order (client_order_id): the signal, the prediction's probabilities, the model
-- version and its registry record (trained on what window, walk-forward metrics, promoted by whom
-- and when) and the feature vector the decision used. Maps are rendered as sorted JSON by the report.
with promotions as (
    select
        model_id,
        model_version,
        argMax(actor, occurred_at) as promoted_by,
        max(occurred_at) as promoted_at
    from {{ ref('stg_tickwave__model_registry_events') }}
    where to_stage = 'champion'
    group by model_id, model_version
)

select
    toDate(decisions.created_at) as report_date,
    decisions.created_at as created_at,
    decisions.client_order_id as client_order_id,
    decisions.symbol as symbol,
    decisions.side as side,
    decisions.quantity_lots as quantity_lots,
    decisions.status as status,
    decisions.signal_id as signal_id,
    decisions.signal_direction as signal_direction,
    decisions.signal_strength as signal_strength,
    decisions.signal_confidence as signal_confidence,
    decisions.probabilities as probabilities,
    decisions.model_id as model_id,
    decisions.model_version as model_version,
    decisions.model_artifact_sha256 as model_artifact_sha256,
    registry.trained_from_at as trained_from_at,
    registry.trained_to_at as trained_to_at,
    registry.created_at as trained_at,
    registry.metrics as walk_forward_metrics,
    promotions.promoted_by as promoted_by,
    promotions.promoted_at as promoted_at,
    decisions.feature_values as feature_values
from {{ ref('decision_log') }} as decisions
left join {{ ref('stg_tickwave__model_registry') }} as registry
    on registry.model_id = decisions.model_id and registry.model_version = decisions.model_version
left join promotions
    on promotions.model_id = decisions.model_id and promotions.model_version = decisions.model_version
