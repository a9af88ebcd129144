"""Features produced by the streams' dataflow, stored in the real embedded warehouse, for the models tests.

A deterministic tick stream (two symbols, 20 hours of 1-minute bars with some momentum)
runs through ``streams.flow.build_flow`` (Bytewax, ``TestingSource``); its bars and
features are written through the streams' own ``WriterPool`` (the warehouse sinks'
batched writers) into a database of the models tests' own, migrated like production
and dropped afterwards. Each test then talks to
the warehouse as to an external ClickHouse (URL + password), with its own state dir,
so the artifact store of one test never sees another's.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from bytewax.testing import TestingSink, TestingSource, run_main

from adapters.endpoints import Endpoint
from adapters.warehouse.client import connect
from adapters.warehouse.credentials import resolve_credentials
from adapters.warehouse.migrate import migrate
from streams.connectors import WriterPool
from streams.flow import FlowSinks, build_flow
from tickwave.clock import ManualClock
from tickwave.config import Settings, StreamsSettings, load_settings
from tickwave.contracts import Bar, FeatureVector, Tick, encode
from tickwave.modeling import ModelProvider
from tickwave.validation import ValidationRules

MINUTES = 1200
# Recent data: the warehouse drops features older than 180 days (TTL), so the sample ends an hour ago.
T0 = (time.time_ns() // 1_000_000 // 3_600_000 - 1) * 3_600_000 - MINUTES * 60_000
TICKS_PER_MINUTE = 4
SYMBOLS = ("EURUSD", "USDJPY")
NOW_MS = T0 + (MINUTES + 60) * 60_000
STREAMS = StreamsSettings(timeframes=("1s", "1m"), late_wait_ms=500, close_on_wall_clock=False, model_refresh_s=0.01)
RANGE_MS = (T0, T0 + MINUTES * 60_000)
MODELS = {
    "n_estimators": 40,
    "max_depth": 3,
    "n_jobs": 1,
    "folds": 3,
    "min_rows": 500,
    "embargo_bars": 5,
    "calibration_bound": 0.15,
    "leakage_windows": 4,
}


def ticks(minutes: int = MINUTES, seed: int = 11) -> list[Tick]:
    """Ticks every 15 s; the log mid reverts to its level (Ornstein-Uhlenbeck, 10 % a minute), so a model can learn.

    A momentum market would not do: there, holding the last bar's direction (a promotion
    baseline) is the best strategy there is, and no model beats it. Here the last bar's
    direction loses (returns are negatively autocorrelated) while the distance from the
    averages (``close_sma_*``, %B) tells where the next minutes go.
    """
    rng = np.random.default_rng(seed)
    out = []
    for symbol, base in (("EURUSD", 1.085), ("USDJPY", 151.25)):
        level = np.zeros(minutes + 1)
        for minute in range(1, minutes + 1):
            level[minute] = 0.9 * level[minute - 1] + rng.normal(0.0, 2e-4)
        path = base * np.exp(level)
        half_spread = base * 1e-5
        for minute in range(minutes):
            for step in range(TICKS_PER_MINUTE):
                # Around the minute's level, not interpolated towards the next one (that would
                # leak the next minute into this bar's close: momentum again).
                mid = float(path[minute] * (1.0 + 2e-5 * rng.standard_normal()))
                mid = round(mid, 5 if base < 10 else 3)
                at_ms = T0 + minute * 60_000 + step * 15_000
                bid, ask = round(mid - half_spread, 6), round(mid + half_spread, 6)
                out.append(Tick(symbol=symbol, time_ms=at_ms, seq=0, bid=bid, ask=ask, volume=1.0))
    return sorted(out, key=lambda tick: (tick.time_ms, tick.symbol))


def run_streams(raw: list[bytes], provider: ModelProvider | None) -> dict[str, list[Any]]:
    """Run the dataflow over raw tick messages; return what each sink received (values, keys dropped)."""
    keyed: dict[str, list[Any]] = {name: [] for name in FlowSinks.__dataclass_fields__}
    sinks = FlowSinks(**{name: TestingSink(items) for name, items in keyed.items()})
    rules = ValidationRules(known_symbols=frozenset(SYMBOLS))
    run_main(build_flow(STREAMS, TestingSource(raw, batch_size=256), sinks, provider, rules, clock=ManualClock(NOW_MS)))
    return {name: [value for _, value in items] for name, items in keyed.items()}


@dataclass(frozen=True)
class StreamsOutput:
    """What the dataflow produced from the sample ticks."""

    raw: list[bytes]
    bars: list[Bar]
    features: list[FeatureVector]


@pytest.fixture(scope="session")
def streams_output() -> StreamsOutput:
    raw = [encode(tick) for tick in ticks()]
    out = run_streams(raw, None)
    return StreamsOutput(raw, out["bars"], out["features"])


def write(settings: Settings, database: str, messages: list[Any]) -> None:
    """Store messages as the streams do: through their warehouse writer pool (one batched writer per table)."""
    pool = WriterPool(lambda: connect(settings, database=database))
    try:
        pool.write(messages)
    finally:
        pool.close()


def stream_into(
    settings: Settings, database: str, ticks: Sequence[Tick], streams: StreamsSettings, now_ms: int
) -> None:
    """Run ``ticks`` through the dataflow (``streams``' timeframes, no model) and store its bars and features."""
    keyed: dict[str, list[Any]] = {name: [] for name in FlowSinks.__dataclass_fields__}
    sinks = FlowSinks(**{name: TestingSink(items) for name, items in keyed.items()})
    rules = ValidationRules(known_symbols=frozenset(tick.symbol for tick in ticks))
    source = TestingSource([encode(tick) for tick in ticks], batch_size=256)
    run_main(build_flow(streams, source, sinks, None, rules, clock=ManualClock(now_ms)))
    write(settings, database, [value for name in ("bars", "features") for _, value in keyed[name]])


@pytest.fixture(scope="session")
def models_database(warehouse_settings: Settings, streams_output: StreamsOutput) -> Iterator[str]:
    """A migrated database of the models tests' own holding the streams' bars and features (tests use own model ids)."""
    database = f"models_{uuid.uuid4().hex[:8]}"
    migrate(warehouse_settings, database=database)
    try:
        write(warehouse_settings, database, [*streams_output.bars, *streams_output.features])
        yield database
    finally:
        client = connect(warehouse_settings, database="default")
        client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
        client.close()


def cli_environment(settings: Settings, directory: Path, models: dict[str, Any]) -> dict[str, str]:
    """The environment of a ``tickwave`` CLI run with ``settings``' warehouse, state dir and model id, and ``models``.

    A ``tickwave.toml`` in ``directory`` names the warehouse (as an external server); the
    market is open at all hours (the promotion's engine backtest replays synthetic hours).
    """
    clickhouse = settings.clickhouse
    password = clickhouse.password.get_secret_value() if clickhouse.password else ""
    lines = "\n".join(f"{key} = {value!r}" for key, value in models.items())
    config = directory / "tickwave.toml"
    config.write_text(
        f'state_dir = "{settings.state_path}"\n'
        f'[clickhouse]\nurl = "{clickhouse.url}"\npassword = "{password}"\ndatabase = "{clickhouse.database}"\n'
        f'[models]\nmodel_id = "{settings.models.model_id}"\n{lines}\n'
        '[market]\nhours = "always"\n'
    )
    env = {key: value for key, value in os.environ.items() if not key.upper().startswith("TICKWAVE_")}
    return {**env, "TICKWAVE_CONFIG": str(config), "COLUMNS": "250"}


def external_settings(
    warehouse_settings: Settings, endpoint: Endpoint, database: str, state_dir: Path, **models: Any
) -> Settings:
    """Settings that reach the session warehouse as an external server, with their own state dir."""
    password = resolve_credentials(warehouse_settings).password.get_secret_value()
    return load_settings(
        state_dir=state_dir,
        clickhouse={"url": f"http://{endpoint.address}", "password": password, "database": database},
        streams=STREAMS.model_dump(),
        models={**MODELS, "model_id": f"m_{uuid.uuid4().hex[:8]}", **models},
        # The promotion's P&L runs through the execution engine, whose fx calendar would close
        # the synthetic hours on a weekend (they end an hour before the test runs).
        market={"hours": "always"},
    )


@pytest.fixture
def models_settings(
    warehouse_settings: Settings, warehouse_endpoint: Endpoint, models_database: str, tmp_path: Path
) -> Settings:
    """This test's settings: its own state dir (artifact store) and model id, the module's database."""
    return external_settings(warehouse_settings, warehouse_endpoint, models_database, tmp_path / "state")
