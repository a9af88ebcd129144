"""The streaming dataflow section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tickwave.config.base import Section
from tickwave.timeframes import TIMEFRAMES, canonical_timeframes

# How far ahead of the reader's wall clock a tick on the bus may be stamped, ms: the default
# of the streams.max_tick_lead_ms setting and of tickwave.validation.ValidationRules.
MAX_TICK_LEAD_MS = 5_000


class StreamsSettings(Section):
    """The Bytewax dataflow: bars, features, inference and signals."""

    timeframes: tuple[str, ...] = Field(
        default=("1s", "1m"),
        description=f"bar timeframes, each stored in bars_<timeframe> (JSON list of {', '.join(TIMEFRAMES)}; "
        "MT5's M1, H4, D1... accepted)",
    )
    bar_alignment: Literal["rollover", "utc"] = Field(
        default="rollover",
        description="where H4 and D1 bars start: the trading day's rollover (market.rollover_time in "
        "market.timezone) or UTC midnight",
    )

    @field_validator("timeframes")
    @classmethod
    def _timeframes_stored(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return canonical_timeframes(value)  # ValueError naming what the warehouse stores

    late_wait_ms: int = Field(default=2000, ge=0, description="how long a window waits for late ticks (ms)")
    close_on_wall_clock: bool = Field(
        default=True, description="close a quiet symbol's bars as wall-clock time passes (see idle_close_ms)"
    )
    idle_close_ms: int = Field(
        default=3000,
        ge=0,
        description="after this long without ticks (wall clock), a symbol's event time advances with the wall clock",
    )
    max_tick_lead_ms: int = Field(
        default=MAX_TICK_LEAD_MS,
        ge=0,
        description="the dataflow and the execution process reject a tick stamped this far ahead of their wall "
        "clock (ms; ingestion has its own, looser ingest.max_source_clock_lead_ms)",
    )
    spike_threshold_bps: float = Field(default=300.0, gt=0, description="reject a mid this far from its reference")
    spike_confirm_ticks: int = Field(default=5, ge=1, description="consecutive spikes that confirm a real level shift")
    # A shift must also hold in event time: longer than a burst stamped from the watermark's wait
    # to max_tick_lead_ms ahead can span (2 s + 5 s by default), so six ticks sent at once never confirm one.
    spike_confirm_ms: int = Field(
        default=10_000, ge=0, description="a level shift is believed only once its ticks span this long (event ms)"
    )
    spike_tolerance_bps: float = Field(
        default=100.0, gt=0, description="the ticks of a level shift agree within this of one another (bps)"
    )
    spike_max_factor: float = Field(
        default=2.0,
        gt=1,
        allow_inf_nan=False,
        description="a move beyond this factor of a settled reference is never believed as a level shift",
    )
    entry_probability: float = Field(default=0.55, ge=0, le=1, description="probability needed for a long/short signal")
    min_edge: float = Field(default=0.10, ge=0, le=1, description="p(up) - p(down) needed for a long/short signal")
    model_refresh_s: float = Field(default=5.0, gt=0, description="how often the flow checks for a new champion model")
    processes: int = Field(default=1, ge=1, description="Bytewax processes (each takes a share of the partitions)")
    # One key per symbol makes the ten symbols that close at a second's boundary run one after another, each
    # with its own model call and produce request; hashed groups make ticks cross between processes, pickled,
    # at half the speed of one process (both measured with bench/streams.py).
    symbol_groups: int = Field(
        default=0,
        ge=0,
        description="state keys of the symbols (each group's closes share one model call and one publish): 0, one "
        "group per process holding the symbols of the ticks partitions it reads, so no tick crosses processes; "
        "N, N groups by a hash of the symbol (fixed for a recovery store)",
    )
    # 30 s, not 5: each snapshot holds the input back ~10 ms (Bytewax's store syncs each commit), and when its phase
    # meets the 1 s bar closes, a 300 s run at 5 s has 16 late seconds in 5 s steps (bench/streams.py); a restart
    # replays at most 30 s of ticks (~1.5 s at the flow's ~100k ticks/s), which the idempotent keys absorb.
    snapshot_interval_s: int = Field(
        default=30, ge=1, description="recovery snapshot (epoch) interval: a restart resumes from the last one (s)"
    )
    loader_nice: int = Field(
        default=10, ge=0, le=19, description="CPU niceness of the streams loader (its bursts yield to the flow)"
    )
