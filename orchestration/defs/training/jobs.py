"""The training job, its nightly schedule and the two sensors (enough new data; a new champion)."""

import dagster as dg

from orchestration.automation import launching_sensor_status, schedule_status
from orchestration.defs.marts.assets import MODEL_PERFORMANCE_JOB, WAITING_FOR_STAGING, staging_built
from orchestration.defs.quality.assets import raw_key
from orchestration.defs.training.assets import promotion_decision, trained_model, training_dataset
from orchestration.resources import TickwaveResource
from orchestration.training import new_labelled_bars, should_retrain

RETRAIN_AFTER_BARS = 1440  # a day of 1-minute bars, all symbols together

# The features' quality check runs in the same job, so its blocking failure stops training.
TRAINING_JOB = dg.define_asset_job(
    "train_model",
    selection=dg.AssetSelection.assets(training_dataset, trained_model, promotion_decision)
    | dg.AssetSelection.checks_for_assets(raw_key("features")),
    description="Check the features, build the dataset, train, register and try to promote a model.",
)


def retrain_on_new_data(
    context: dg.SensorEvaluationContext, tickwave: TickwaveResource
) -> dg.RunRequest | dg.SkipReason:
    """Request training once enough newly labelled bars have landed since the champion's training range ended.

    The run key names the champion's data end, so one champion gets at most one retraining from this sensor.
    """
    from models.registry import ModelRegistry

    settings = tickwave.settings()
    models = settings.models
    registry = ModelRegistry(settings)
    try:
        champion = registry.champion(models.registry_id, models.timeframe)
        since_ms = champion.trained_to_ms if champion else 0
        new_bars = new_labelled_bars(registry.client, models.timeframe, since_ms, models.horizon_bars)
    finally:
        registry.close()
    basis = f"{champion.name}'s data" if champion else "the start (no champion yet)"
    if not should_retrain(new_bars, RETRAIN_AFTER_BARS):
        return dg.SkipReason(
            f"{new_bars} new labelled {models.timeframe} bars since {basis}; retraining after {RETRAIN_AFTER_BARS}"
        )
    context.log.info(f"{new_bars} new labelled {models.timeframe} bars since {basis}: retraining")
    return dg.RunRequest(run_key=f"retrain-after-{since_ms}", tags={"tickwave/reason": f"{new_bars} new bars"})


def model_performance_on_new_champion(
    context: dg.SensorEvaluationContext, tickwave: TickwaveResource
) -> dg.RunRequest | dg.SkipReason:
    """Rebuild today's model-performance mart when the champion changes (the cursor holds the last one seen)."""
    from models.registry import ModelRegistry

    settings = tickwave.settings()
    registry = ModelRegistry(settings)
    try:
        champion = registry.champion(settings.models.registry_id)
    finally:
        registry.close()
    if champion is None:
        return dg.SkipReason(f"{settings.models.registry_id} has no champion")
    key = f"{champion.model_id}:{champion.model_version}"
    if key == context.cursor:
        return dg.SkipReason(f"champion {key} already seen")
    if not staging_built(context.instance):  # the champion stays unseen: asked again at the next tick
        return dg.SkipReason(WAITING_FOR_STAGING)
    context.update_cursor(key)
    today = str(tickwave.now().date())
    return dg.RunRequest(run_key=f"champion-{key}", partition_key=today, tags={"tickwave/champion": key})


@dg.definitions
def training() -> dg.Definitions:
    """The training assets, job, nightly schedule (02:00 UTC) and sensors."""
    nightly = dg.ScheduleDefinition(
        name="retrain_nightly",
        job=TRAINING_JOB,
        cron_schedule="0 2 * * *",
        execution_timezone="UTC",
        default_status=schedule_status(),
    )
    status = launching_sensor_status()
    return dg.Definitions(
        assets=[training_dataset, trained_model, promotion_decision],
        jobs=[TRAINING_JOB],
        schedules=[nightly],
        sensors=[
            dg.sensor(job=TRAINING_JOB, minimum_interval_seconds=600, default_status=status)(retrain_on_new_data),
            dg.sensor(job=MODEL_PERFORMANCE_JOB, minimum_interval_seconds=60, default_status=status)(
                model_performance_on_new_champion
            ),
        ],
    )
