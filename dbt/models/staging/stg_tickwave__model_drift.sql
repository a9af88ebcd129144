-- one row per drift measurement (model_id, model_version, measured_at): the inputs' PSI against the
-- training window, live log loss and accuracy beside the holdout's, whether retraining is due
select
    model_id,
    model_version,
    timeframe,
    window_from_ms as window_from_at,
    window_to_ms as window_to_at,
    training_rows,
    live_rows,
    psi,
    max_psi,
    worst_input,
    live_scored,
    live_log_loss,
    live_accuracy,
    holdout_log_loss,
    holdout_accuracy,
    is_retrain_due,
    reasons,
    measured_at_ms as measured_at
from {{ source('tickwave', 'model_drift') }} final
