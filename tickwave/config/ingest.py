"""The tick ingestion section."""

from __future__ import annotations

from pydantic import Field

from tickwave.config.base import Section


class IngestSettings(Section):
    """Tick ingestion (``tickwave ingest``): validation limits, batching, simulator defaults."""

    max_source_clock_lead_ms: int = Field(
        default=60_000, ge=0, description="ticks stamped later than now + this (ms) go to the DLQ as future_timestamp"
    )
    batch_ticks: int = Field(default=65_536, ge=1, description="rows read per batch from replay files")
    stats_interval_s: float = Field(default=10.0, gt=0, description="how often counters are logged (s)")
    flush_timeout_s: float = Field(
        default=120.0,
        gt=0,
        description="how long the end of a run waits for Kafka to acknowledge what is queued (a broker restarting "
        "takes up to a minute); until then nothing queued expires",
    )
    sim_symbols: list[str] = Field(
        default=["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"], description="symbols the simulator quotes"
    )
    sim_rate: float = Field(default=20.0, gt=0, description="simulator ticks per second, all symbols together")
    sim_seed: int = Field(default=7, description="simulator random seed (same seed, same market)")
