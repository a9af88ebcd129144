"""The raw tables observed every five minutes: rows stored and newest row, recorded as asset observations.

The raw tables are written by the streams and execution processes, so Dagster never
materializes them; this sensor reports what they hold (``dagster/row_count``, the newest
row's time as ``dagster/last_updated_timestamp``, and its lag), so the catalog shows each
table's volume and freshness over time.
"""

import dagster as dg

from orchestration.automation import RECORDING
from orchestration.defs.quality.assets import raw_key
from orchestration.resources import TickwaveResource

OBSERVE_EVERY_S = 300


@dg.sensor(
    minimum_interval_seconds=OBSERVE_EVERY_S,
    default_status=RECORDING,
    description="Observe every raw table's rows and newest row (asset observations)",
)
def raw_tables_observed(context: dg.SensorEvaluationContext, tickwave: TickwaveResource) -> dg.SensorResult:
    """Record one observation per raw table."""
    from quality.observe import observe_tables
    from quality.suites import QualityLimits, suites

    with tickwave.client() as client:
        observations = observe_tables(client, suites(QualityLimits()))
    now = tickwave.now()
    events = []
    for observation in observations:
        metadata: dict[str, dg.RawMetadataValue] = {"dagster/row_count": observation.rows}
        if observation.newest_at is not None:
            metadata["dagster/last_updated_timestamp"] = dg.MetadataValue.timestamp(observation.newest_at)
            metadata["lag_s"] = round(observation.lag_s(now) or 0.0, 3)
        events.append(dg.AssetObservation(asset_key=raw_key(observation.table), metadata=metadata))
    context.log.info(", ".join(f"{item.table} {item.rows:,}" for item in observations))
    return dg.SensorResult(asset_events=events)
