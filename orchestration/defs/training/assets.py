"""Training as assets: the point-in-time dataset -> the trained model -> the registry's promotion decision.

Thin glue over ``models/``: ``build_dataset`` (point in time, labels from later bars only),
``train_model`` (walk-forward, leakage check, ONNX export, registration) and
``ModelRegistry.promote`` (the promotion rules). The dataset depends on the raw
``features`` asset, whose blocking quality check, run in the same job, stops training
when it fails (the model asset is then not executed; the run shows the failed check).
"""

from typing import Any

import dagster as dg
from pydantic import Field

from orchestration.client import launched_by
from orchestration.defs.quality.assets import raw_key
from orchestration.resources import TickwaveResource
from orchestration.training import TrainingWindow, stored_window


class TrainingConfig(dg.Config):
    """Which data to train on: explicit symbols and range, or the last ``days`` of stored features."""

    symbols: list[str] = Field(default_factory=list)
    from_ms: int = 0
    to_ms: int = 0
    days: int = 30


@dg.asset(
    group_name="training",
    deps=[raw_key("features"), raw_key("bars_1m"), raw_key("bars_1s")],
    kinds={"python", "clickhouse"},
)
def training_dataset(
    context: dg.AssetExecutionContext, config: TrainingConfig, tickwave: TickwaveResource
) -> dg.Output[TrainingWindow]:
    """Build the point-in-time training dataset (features joined to labels from later bars) and describe it."""
    from models.dataset import LabelSpec, build_dataset, class_counts, iso_utc, query_bars, query_features
    from streams.features import FeatureSpec

    settings, spec = tickwave.settings(), FeatureSpec()
    models = settings.models
    with tickwave.client() as client:
        if config.symbols and config.to_ms:
            window: TrainingWindow | None = TrainingWindow(tuple(config.symbols), (config.from_ms, config.to_ms))
        else:
            window = stored_window(client, models.timeframe, config.days)
        if window is None:
            raise dg.Failure(f"no {models.timeframe} features are stored: nothing to train on")
        features = query_features(client, window.symbols, models.timeframe, window.range_ms, spec.names)
        bars = query_bars(client, window.symbols, models.timeframe, window.range_ms)
    dataset = build_dataset(
        features,
        bars,
        spec.model_names,
        spec.schema_hash,
        LabelSpec(models.horizon_bars, models.dead_zone_bps),
        models.timeframe,
        window.range_ms,
        models.min_rows,
    )
    context.log.info(f"dataset: {len(dataset)} rows of {', '.join(window.symbols)}")
    return dg.Output(
        window,
        metadata={
            "rows": len(dataset),
            "symbols": ", ".join(window.symbols),
            "timeframe": models.timeframe,
            "from": iso_utc(window.range_ms[0]),
            "to": iso_utc(window.range_ms[1]),
            "classes": dg.MetadataValue.json(class_counts(dataset.labels)),
            "feature_schema": spec.schema_hash,
        },
    )


@dg.asset(group_name="training", kinds={"xgboost", "onnx"})
def trained_model(
    context: dg.AssetExecutionContext, training_dataset: TrainingWindow, tickwave: TickwaveResource
) -> dg.Output[tuple[str, int]]:
    """Train on the dataset's window (walk-forward, leakage check, ONNX export) and register a candidate."""
    from models.pipeline import train_model
    from orchestration.run_log import record_start

    settings = tickwave.settings()
    with tickwave.client() as client:  # the run's record in the warehouse before it registers a model
        record_start(context, client)
    outcome = train_model(
        settings,
        training_dataset.symbols,
        training_dataset.range_ms,
        launched_by(context.instance, context.run),
        promote=False,
    )
    entry = outcome.entry
    report = settings.state_path / "models" / f"{entry.artifact_sha256}.report" / "report.html"
    figures = {name: round(value, 6) for name, value in sorted(entry.metrics.items())}
    return dg.Output(
        (entry.model_id, entry.model_version),
        metadata={
            "model": entry.name,
            "artifact_sha256": entry.artifact_sha256,
            "rows": len(outcome.result.dataset.frame),
            "walk_forward": dg.MetadataValue.json({k: v for k, v in figures.items() if k.startswith("wf_")}),
            "holdout": dg.MetadataValue.json({k: v for k, v in figures.items() if k.startswith("holdout_")}),
            "report": dg.MetadataValue.path(str(report)),
            "leakage_rows_compared": outcome.leakage.compared_rows,
        },
    )


@dg.asset(group_name="training", kinds={"python"})
def promotion_decision(
    context: dg.AssetExecutionContext, trained_model: tuple[str, int], tickwave: TickwaveResource
) -> dg.MaterializeResult[Any]:
    """Try to promote the new version to champion under the registry's rules; record the decision either way."""
    from models.errors import PromotionRefused
    from models.registry import ModelRegistry
    from orchestration.run_log import record_start

    model_id, version = trained_model
    registry = ModelRegistry(tickwave.settings())
    try:
        record_start(context, registry.client)  # the run's record in the warehouse before it promotes
        try:
            decision = registry.promote(model_id, version, launched_by(context.instance, context.run))
            reasons, notes, figures = list(decision.failures), list(decision.notes), dict(decision.figures)
            promoted = decision.is_promoted
        except PromotionRefused as refused:
            reasons, notes, figures, promoted = list(refused.reasons), list(refused.notes), dict(refused.figures), False
        champion = registry.champion(model_id, registry.entry(model_id, version).timeframe)
    finally:
        registry.close()
    context.log.info(f"{model_id} v{version}: {'promoted' if promoted else 'stays a candidate: ' + '; '.join(reasons)}")
    return dg.MaterializeResult(
        metadata={
            "model": f"{model_id} v{version}",
            "promoted": promoted,
            "reasons": dg.MetadataValue.json(reasons),
            "notes": dg.MetadataValue.json(notes),
            "figures": dg.MetadataValue.json(figures),
            "champion": f"{champion.model_id} v{champion.model_version}" if champion else "none",
        }
    )
