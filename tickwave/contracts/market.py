"""Market data and analytics on the bus: ticks, dead letters, bars, features, predictions, signals."""

from __future__ import annotations

import math
from typing import Annotated, Literal

import msgspec

from tickwave.contracts.base import (
    INT64_MAX,
    Count,
    Direction,
    EpochMs,
    Int64,
    Message,
    NonNegative,
    Positive,
    Symbol,
    require_finite,
    require_positive,
)
from tickwave.contracts.core import mid_price, stable_id


class Tick(Message, frozen=True, tag="tick.v1"):
    """One quote or trade from a market source.

    ``seq`` orders distinct ticks that share one millisecond (MT5 delivers such ticks
    and they are real), so ``(symbol, time_ms, seq)`` identifies a tick.
    """

    symbol: Symbol
    time_ms: EpochMs
    seq: Count
    bid: Positive
    ask: Positive
    last: NonNegative = 0.0
    volume: NonNegative = 0.0
    flags: Int64 = 0
    source: str = ""

    def __post_init__(self) -> None:
        """Reject impossible quotes: non-finite, non-positive, or ask below bid."""
        # One chained comparison on the hot path (NaN fails every comparison).
        if 0.0 < self.bid <= self.ask < math.inf and 0.0 <= self.last < math.inf and 0.0 <= self.volume < math.inf:
            return
        require_finite(self, "bid", "ask", "last", "volume")
        require_positive(self, "bid", "ask")
        if self.ask < self.bid:
            raise ValueError(f"ask {self.ask!r} is below bid {self.bid!r}")
        raise ValueError("last and volume must be >= 0")

    @property
    def tick_id(self) -> str:
        """The natural id: symbol, event time and ordinal within the millisecond."""
        return f"{self.symbol}:{self.time_ms}:{self.seq}"

    @property
    def mid(self) -> float:
        """The mid price (:func:`~tickwave.contracts.core.mid_price`)."""
        return mid_price(self.bid, self.ask)


class DeadLetter(Message, frozen=True, tag="dead_letter.v1"):
    """Input that was rejected, with the reason and the raw bytes (UTF-8 or base64)."""

    source: str
    reason: str
    raw: str
    received_at_ms: EpochMs
    raw_encoding: Literal["utf-8", "base64"] = "utf-8"
    symbol: str = ""

    @property
    def dead_letter_id(self) -> str:
        """A deterministic id of the rejected input."""
        return stable_id(self.source, self.raw)


class Bar(Message, frozen=True, tag="bar.v1"):
    """OHLC of bid, ask and mid over one event-time window of one symbol."""

    symbol: Symbol
    timeframe: str
    start_ms: EpochMs
    end_ms: EpochMs
    bid_open: float
    bid_high: float
    bid_low: float
    bid_close: float
    ask_open: float
    ask_high: float
    ask_low: float
    ask_close: float
    mid_open: float
    mid_high: float
    mid_low: float
    mid_close: float
    tick_count: Annotated[int, msgspec.Meta(ge=1, le=INT64_MAX)]
    volume: float
    spread_mean: float
    spread_max: float

    def __post_init__(self) -> None:
        """Reject windows that end before they start and non-finite values."""
        if self.end_ms <= self.start_ms:
            raise ValueError("end_ms must be after start_ms")
        # Fast path: a sum of finite values is finite (NaN and inf propagate; an overflow
        # only sends a valid bar to the exact check below).
        total = (
            self.bid_open
            + self.bid_high
            + self.bid_low
            + self.bid_close
            + self.ask_open
            + self.ask_high
            + self.ask_low
            + self.ask_close
            + self.mid_open
            + self.mid_high
            + self.mid_low
            + self.mid_close
            + self.volume
            + self.spread_mean
            + self.spread_max
        )
        if math.isfinite(total):
            return
        require_finite(
            self,
            "bid_open",
            "bid_high",
            "bid_low",
            "bid_close",
            "ask_open",
            "ask_high",
            "ask_low",
            "ask_close",
            "mid_open",
            "mid_high",
            "mid_low",
            "mid_close",
            "volume",
            "spread_mean",
            "spread_max",
        )

    @property
    def bar_id(self) -> str:
        """The natural key ``(symbol, timeframe, start)``."""
        return f"{self.symbol}:{self.timeframe}:{self.start_ms}"


class FeatureVector(Message, frozen=True, tag="features.v1"):
    """Indicator values at one bar close; ``None`` marks a value still warming up."""

    symbol: Symbol
    timeframe: str
    bar_start_ms: EpochMs
    values: dict[str, float | None]
    is_warm: bool
    schema_hash: str = ""

    def __post_init__(self) -> None:
        """Reject non-finite numbers (warm-up is ``None``, never NaN)."""
        if math.isfinite(sum(value for value in self.values.values() if value is not None)):
            return
        for name, value in self.values.items():
            if value is not None and not math.isfinite(value):
                raise ValueError(f"feature {name} must be finite or null, got {value!r}")

    @property
    def feature_id(self) -> str:
        """The natural key: the bar's key."""
        return f"{self.symbol}:{self.timeframe}:{self.bar_start_ms}"


class Prediction(Message, frozen=True, tag="prediction.v1"):
    """One model output for one feature vector."""

    symbol: Symbol
    timeframe: str
    bar_start_ms: EpochMs
    model_id: str
    model_version: Int64
    probabilities: dict[str, float]
    inference_latency_us: float
    predicted_at_ms: EpochMs
    # Added compatibly (older messages decode with the defaults): an ensemble's confidence
    # score (members' agreement x certainty of the blend) and its members ("framework:weight").
    confidence: float | None = None
    members: tuple[str, ...] = ()
    # Added compatibly: "champion" (its signal trades) or "challenger" (scored in shadow, never a signal).
    role: str = "champion"

    def __post_init__(self) -> None:
        """Require probabilities and the confidence in [0, 1]."""
        for label, probability in self.probabilities.items():
            if not (0.0 <= probability <= 1.0):
                raise ValueError(f"probability of {label} must be in [0, 1], got {probability!r}")
        if self.confidence is not None and not (0.0 <= self.confidence <= 1.0):
            raise ValueError(f"confidence must be in [0, 1], got {self.confidence!r}")


class Signal(Message, frozen=True, tag="signal.v1"):
    """A trading signal derived from a prediction; ``signal_id`` is deterministic."""

    signal_id: str
    symbol: Symbol
    timeframe: str
    bar_start_ms: EpochMs
    direction: Direction
    strength: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    confidence: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
    model_id: str
    model_version: Int64
    created_at_ms: EpochMs
    # Added compatibly (older messages decode with the default): an ensemble's members
    # ("framework:weight"); their confidence score is ``confidence``.
    members: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Require strength and confidence within [0, 1] (also when constructed in code)."""
        for name in ("strength", "confidence"):
            value = getattr(self, name)
            if not (0.0 <= value <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {value!r}")

    @staticmethod
    def make_id(model_id: str, model_version: int, symbol: str, timeframe: str, bar_start_ms: int) -> str:
        """Return the deterministic id of the signal for one model and bar."""
        return stable_id("signal", model_id, model_version, symbol, timeframe, bar_start_ms)
