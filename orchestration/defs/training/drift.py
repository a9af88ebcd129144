"""Drift and decay of the champion, hourly, and the retraining they ask for (thin glue over ``models/drift.py``)."""

import dagster as dg

from orchestration.automation import launching_sensor_status, schedule_status
from orchestration.defs.quality.assets import raw_key
from orchestration.defs.training.jobs import TRAINING_JOB
from orchestration.resources import TickwaveResource

DRIFT_DEPS = [raw_key("features"), raw_key("predictions"), raw_key("model_registry"), dg.AssetKey("promotion_decision")]


@dg.asset(group_name="training", kinds={"python", "clickhouse"}, deps=DRIFT_DEPS)
def model_drift(context: dg.AssetExecutionContext, tickwave: TickwaveResource) -> dg.MaterializeResult[None]:
    """Each model input's PSI (live window vs the champion's training window) and the live log loss vs the holdout's.

    One ``model_drift`` row per measurement; ``retrain_on_drift`` retrains when it says so.
    """
    from adapters.warehouse.writer import BatchWriter
    from models.dataset import LabelSpec
    from models.drift import DriftThresholds, measure_drift
    from models.registry import ModelRegistry
    from tickwave.warehouse.tables import MODEL_DRIFT

    settings = tickwave.settings()
    models = settings.models
    thresholds = DriftThresholds(models.drift_psi_threshold, models.decay_log_loss_ratio, models.decay_min_rows)
    registry = ModelRegistry(settings)
    try:
        champion = registry.champion(models.registry_id)
        if champion is None:
            context.log.info(f"{models.registry_id} has no champion: nothing to measure")
            return dg.MaterializeResult(metadata={"champion": "none"})
        artifact = registry.artifact(champion)
        params = champion.params
        label_spec = LabelSpec(
            int(params.get("horizon_bars", models.horizon_bars)),
            float(params.get("dead_zone_bps", models.dead_zone_bps)),
        )
        now_ms, window_ms = tickwave.clock().now_ms(), int(models.drift_window_hours * 3_600_000)
        report = measure_drift(
            registry.client,
            champion,
            artifact.feature_names,
            artifact.timeframe,
            artifact.symbols,
            label_spec,
            window_ms,
            now_ms,
        )
        row = report.row(thresholds, now_ms)
        with BatchWriter(registry.client, MODEL_DRIFT) as writer:
            writer.write([row])
    finally:
        registry.close()
    context.log.info(
        f"{champion.name}: max PSI {report.max_psi:.3f} ({report.worst_input or 'no input'}), "
        f"live log loss {report.live_log_loss}, retrain due: {row['is_retrain_due']}"
    )
    return dg.MaterializeResult(
        metadata={
            "champion": champion.name,
            "max_psi": report.max_psi,
            "worst_input": report.worst_input,
            "live_rows": report.live_rows,
            "live_scored": report.live_scored,
            "live_log_loss": report.live_log_loss,
            "holdout_log_loss": report.holdout_log_loss,
            "retrain_due": bool(row["is_retrain_due"]),
            "reasons": str(row["reasons"]) or "none",
            "psi": dg.MetadataValue.json(dict(report.psi)),
        }
    )


DRIFT_JOB = dg.define_asset_job(
    "measure_drift",
    selection=dg.AssetSelection.assets(model_drift),
    description="Measure the champion's input drift and live decay (hourly).",
)


def retrain_on_drift(context: dg.SensorEvaluationContext, tickwave: TickwaveResource) -> dg.RunRequest | dg.SkipReason:
    """Retrain once per champion when its latest drift measurement says so (the run key names the champion)."""
    settings = tickwave.settings()
    with tickwave.client() as client:
        rows = client.query(
            "SELECT model_version, is_retrain_due, reasons FROM model_drift FINAL WHERE model_id = {model:String} "
            "ORDER BY measured_at_ms DESC LIMIT 1",
            parameters={"model": settings.models.registry_id},
        ).result_rows
    if not rows:
        return dg.SkipReason(f"no drift measured yet for {settings.models.registry_id}")
    version, is_due, reasons = rows[0]
    if not is_due:
        return dg.SkipReason(f"{settings.models.registry_id} v{version}: no drift or decay beyond the thresholds")
    context.log.info(f"{settings.models.registry_id} v{version}: retraining ({reasons})")
    return dg.RunRequest(
        run_key=f"drift-{settings.models.registry_id}-v{version}", tags={"tickwave/reason": str(reasons)[:200]}
    )


@dg.definitions
def drift() -> dg.Definitions:
    """The drift asset, its hourly schedule and the retraining sensor."""
    hourly = dg.ScheduleDefinition(
        name="model_drift_hourly",
        job=DRIFT_JOB,
        cron_schedule="15 * * * *",
        execution_timezone="UTC",
        default_status=schedule_status(),
    )
    sensor = dg.sensor(job=TRAINING_JOB, minimum_interval_seconds=300, default_status=launching_sensor_status())(
        retrain_on_drift
    )
    return dg.Definitions(assets=[model_drift], jobs=[DRIFT_JOB], schedules=[hourly], sensors=[sensor])
