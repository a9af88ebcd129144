"""The training job, its nightly schedule and the two sensors (enough new data; a new champion)."""

from collections.abc import Iterator

import dagster as dg

from orchestration.defs.marts.assets import MODEL_PERFORMANCE_JOB
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


@dg.sensor(job=TRAINING_JOB, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING)
def retrain_on_new_data(context: dg.SensorEvaluationContext, tickwave: TickwaveResource) -> Iterator[dg.RunRequest]:
    """Request training once enough newly labelled bars have landed since the champion's training range ended."""
    from models.registry import ModelRegistry

    settings = tickwave.settings()
    models = settings.models
    registry = ModelRegistry(settings)
    try:
        champion = registry.champion(models.model_id)
        since_ms = champion.trained_to_ms if champion else 0
        new_bars = new_labelled_bars(registry.client, models.timeframe, since_ms, models.horizon_bars)
    finally:
        registry.close()
    basis = f"{champion.name} (data to {since_ms})" if champion else "no champion yet"
    if not should_retrain(new_bars, RETRAIN_AFTER_BARS):
        context.update_cursor(f"{since_ms}:{new_bars}")
        yield from ()
        return
    context.log.info(f"{new_bars} new labelled {models.timeframe} bars since {basis}: retraining")
    yield dg.RunRequest(run_key=f"retrain-after-{since_ms}", tags={"tickwave/reason": f"{new_bars} new bars"})


def _champion_key(entry: object) -> str:
    return f"{getattr(entry, 'model_id', '')}:{getattr(entry, 'model_version', '')}"


@dg.sensor(job=MODEL_PERFORMANCE_JOB, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def model_performance_on_new_champion(
    context: dg.SensorEvaluationContext, tickwave: TickwaveResource
) -> Iterator[dg.RunRequest]:
    """Rebuild the model-performance mart when the champion changes (the cursor holds the last one seen)."""
    from models.registry import ModelRegistry

    settings = tickwave.settings()
    registry = ModelRegistry(settings)
    try:
        champion = registry.champion(settings.models.model_id)
    finally:
        registry.close()
    if champion is None:
        return
    key = _champion_key(champion)
    if key == context.cursor:
        return
    context.update_cursor(key)
    yield dg.RunRequest(run_key=f"champion-{key}", tags={"tickwave/champion": key})


@dg.definitions
def training() -> dg.Definitions:
    """The training assets, job, nightly schedule (02:00 UTC) and sensors."""
    nightly = dg.ScheduleDefinition(name="retrain_nightly", job=TRAINING_JOB, cron_schedule="0 2 * * *",
                                    execution_timezone="UTC")  # fmt: skip
    return dg.Definitions(
        assets=[training_dataset, trained_model, promotion_decision], jobs=[TRAINING_JOB], schedules=[nightly],
        sensors=[retrain_on_new_data, model_performance_on_new_champion],
    )  # fmt: skip
