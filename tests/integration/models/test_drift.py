"""Drift and decay measured from the real warehouse: one input shifted in the live window drifts, the others do not,
and the champion's live predictions are scored against the bars that followed them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pytest
from clickhouse_connect.driver.client import Client

from adapters.warehouse.client import connect
from adapters.warehouse.migrate import migrate
from models.dataset import LabelSpec
from models.drift import DriftThresholds, measure_drift
from models.registry import RegistryEntry
from streams.features import FeatureSpec
from tickwave.config import Settings

MINUTE_MS = 60_000
BARS = 600


@pytest.fixture
def drift_database(warehouse_settings: Settings) -> Iterator[Client]:
    database = f"drift_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    client = connect(warehouse_settings, database=database)
    try:
        yield client
    finally:
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()


def _moment(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _write_window(client: Client, start_ms: int, spec: FeatureSpec, shift: float, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    names = spec.model_names
    starts = [start_ms + n * MINUTE_MS for n in range(BARS)]
    rows = []
    for start in starts:
        values = {name: float(rng.normal()) for name in names}
        values[names[0]] += shift  # only the first input moves
        rows.append(["EURUSD", "1m", _moment(start), values, True, spec.schema_hash])
    client.insert(
        "features", rows, column_names=["symbol", "timeframe", "bar_start_ms", "values", "is_warm", "schema_hash"]
    )
    return starts


def test_measure_drift_when_one_input_shifts_live_then_only_it_drifts_and_live_predictions_are_scored(
    drift_database: Client,
) -> None:
    spec = FeatureSpec()
    now_ms = int(time.time() * 1000) // MINUTE_MS * MINUTE_MS
    trained_from = now_ms - 3 * 86_400_000
    _write_window(drift_database, trained_from, spec, shift=0.0, seed=1)
    live = _write_window(drift_database, now_ms - BARS * MINUTE_MS, spec, shift=2.0, seed=2)
    # live bars climbing 2 bp a minute (every label "up"), and predictions of 0.5 up on each of them
    mids = 1.1 * (1 + 0.0002 * np.arange(BARS))
    drift_database.insert(
        "bars_1m",
        [["EURUSD", "1m", _moment(s), _moment(s + MINUTE_MS), m, m, m] for s, m in zip(live, mids, strict=True)],
        column_names=["symbol", "timeframe", "start_ms", "end_ms", "mid_close", "bid_close", "ask_close"],
    )
    drift_database.insert(
        "predictions",
        [["EURUSD", "1m", _moment(s), "m", 3, {"down": 0.2, "flat": 0.3, "up": 0.5}, 1.0, _moment(s)] for s in live],
        column_names=[
            "symbol",
            "timeframe",
            "bar_start_ms",
            "model_id",
            "model_version",
            "probabilities",
            "inference_latency_us",
            "predicted_at_ms",
        ],
    )
    entry = RegistryEntry(
        model_id="m",
        model_version=3,
        stage="champion",
        framework="xgboost",
        artifact_uri="",
        artifact_sha256="",
        feature_schema_hash=spec.schema_hash,
        metrics={"holdout_log_loss": 0.5, "holdout_accuracy": 0.6},
        params={},
        trained_from_ms=trained_from,
        trained_to_ms=trained_from + BARS * MINUTE_MS,
        created_at_ms=0,
        updated_at_ms=0,
    )

    report = measure_drift(
        drift_database,
        entry,
        spec.model_names,
        "1m",
        ("EURUSD",),
        LabelSpec(5, 1.0),
        window_ms=BARS * MINUTE_MS,
        now_ms=now_ms,
    )

    names = spec.model_names
    assert (report.training_rows, report.live_rows) == (BARS, BARS)
    assert report.worst_input == names[0] and report.psi[names[0]] > 1.0
    assert max(report.psi[name] for name in names[1:]) < 0.1
    assert report.live_scored == BARS - 5  # the last five bars have no label yet
    assert report.live_log_loss == pytest.approx(-np.log(0.5)) and report.live_accuracy == 1.0
    reasons = report.reasons(DriftThresholds(min_rows=100))
    assert reasons[0].startswith(f"{names[0]} drifted") and "live log loss 0.6931 > 1.25 x holdout 0.5000" in reasons[1]
