-- one row per order (client_order_id): the order, the signal it came from, the prediction behind the
-- signal, the model version (artifact and stage) and the feature vector it was decided on.
{{ config(order_by='client_order_id', ttl=retention_ttl()) }}
select
    orders.client_order_id as client_order_id,
    orders.symbol as symbol,
    orders.side as side,
    orders.quantity_lots as quantity_lots,
    orders.status as status,
    orders.created_at as created_at,
    orders.signal_id as signal_id,
    orders.signal_direction as signal_direction,
    orders.signal_strength as signal_strength,
    orders.signal_confidence as signal_confidence,
    orders.decided_at as decided_at,
    orders.signal_timeframe as timeframe,
    orders.signal_bar_start_at as bar_start_at,
    predictions.probabilities as probabilities,
    predictions.predicted_at as predicted_at,
    orders.model_id as model_id,
    orders.model_version as model_version,
    registry.artifact_sha256 as model_artifact_sha256,
    registry.stage as model_stage,
    features.feature_values as feature_values,
    features.schema_hash as feature_schema_hash
from {{ ref('fct_orders') }} as orders
left join {{ ref('stg_tickwave__predictions') }} as predictions
    on predictions.symbol = orders.symbol and predictions.timeframe = orders.signal_timeframe
    and predictions.model_id = orders.model_id and predictions.model_version = orders.model_version
    and predictions.bar_start_at = orders.signal_bar_start_at
left join {{ ref('stg_tickwave__model_registry') }} as registry
    on registry.model_id = orders.model_id and registry.model_version = orders.model_version
left join {{ ref('stg_tickwave__features') }} as features
    on features.symbol = orders.symbol and features.timeframe = orders.signal_timeframe
    and features.bar_start_at = orders.signal_bar_start_at
