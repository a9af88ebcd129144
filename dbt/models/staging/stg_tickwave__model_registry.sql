-- one row per model version (model_id, model_version): its current stage
select
    model_id,
    model_version,
    stage,
    framework,
    artifact_sha256,
    feature_schema_hash,
    metrics,
    params,
    toUInt32OrZero(params['horizon_bars']) as horizon_bars,
    toFloat64OrZero(params['dead_zone_bps']) as dead_zone_bps,
    -- the model id naming the champion slot it fills or challenges: its own unless shadowed against another's
    if(params['slot'] = '', model_id, params['slot']) as slot,
    trained_from_ms as trained_from_at,
    trained_to_ms as trained_to_at,
    created_at_ms as created_at,
    updated_at_ms as updated_at
from {{ source('tickwave', 'model_registry') }} final
