"""Per-symbol feature state: each closed bar in, one ``FeatureVector`` out, O(1) per bar.

Indicators run on the bar's mid prices (ATR on mid high/low/close) and the spread
z-score on the bar's mean spread. A value still warming up is ``None``; the vector's
``is_warm`` is True once every value is a number. ``schema_hash`` names the feature
set (names, order and parameters), so a model trained on one set refuses another.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from streams.indicators import Atr, Bollinger, Ema, LogReturn, Macd, RealizedVolatility, Rsi, Sma, ZScore
from tickwave.contracts import Bar, FeatureVector


@dataclass(frozen=True)
class FeatureSpec:
    """Which indicators, with which parameters."""

    sma_periods: tuple[int, ...] = (5, 20, 50)
    ema_periods: tuple[int, ...] = (12, 26, 50)
    rsi_period: int = 14
    macd: tuple[int, int, int] = (12, 26, 9)
    bollinger_period: int = 20
    bollinger_width: float = 2.0
    atr_period: int = 14
    return_horizons: tuple[int, ...] = (1, 5, 15)
    volatility_period: int = 20
    spread_period: int = 20

    @property
    def names(self) -> tuple[str, ...]:
        """Feature names, in the order models receive them."""
        return (
            *(f"sma_{period}" for period in self.sma_periods),
            *(f"ema_{period}" for period in self.ema_periods),
            f"rsi_{self.rsi_period}",
            "macd", "macd_signal", "macd_hist",
            "bb_upper", "bb_middle", "bb_lower",
            f"atr_{self.atr_period}",
            *(f"logret_{horizon}" for horizon in self.return_horizons),
            f"rvol_{self.volatility_period}",
            f"spread_z_{self.spread_period}",
        )  # fmt: skip

    @property
    def schema_hash(self) -> str:
        """A short hash of the names and parameters."""
        text = json.dumps({"names": self.names, "params": asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class FeatureState:
    """Indicator state of one symbol and timeframe."""

    spec: FeatureSpec = field(default_factory=FeatureSpec)

    def __post_init__(self) -> None:
        """Build one indicator object per feature."""
        spec = self.spec
        self.smas = [Sma(period) for period in spec.sma_periods]
        self.emas = [Ema(period) for period in spec.ema_periods]
        self.rsi = Rsi(spec.rsi_period)
        self.macd = Macd(*spec.macd)
        self.bollinger = Bollinger(spec.bollinger_period, spec.bollinger_width)
        self.atr = Atr(spec.atr_period)
        self.returns = [LogReturn(horizon) for horizon in spec.return_horizons]
        self.volatility = RealizedVolatility(spec.volatility_period)
        self.spread = ZScore(spec.spread_period)
        self.schema_hash = spec.schema_hash
        self.names = spec.names
        self.last_bar_start_ms = -1

    def update(self, bar: Bar) -> FeatureVector | None:
        """Fold in a closed bar; return its feature vector (None for a repeated bar).

        A bar re-emitted after a recovery (same or earlier start) is ignored, so the
        indicators never count a bar twice.
        """
        if bar.start_ms <= self.last_bar_start_ms:
            return None
        self.last_bar_start_ms = bar.start_ms
        close = bar.mid_close
        macd = self.macd.update(close)
        bands = self.bollinger.update(close)
        values: list[float | None] = [
            *(sma.update(close) for sma in self.smas),
            *(ema.update(close) for ema in self.emas),
            self.rsi.update(close),
            *(macd if macd is not None else (None, None, None)),
            *(bands if bands is not None else (None, None, None)),
            self.atr.update(bar.mid_high, bar.mid_low, close),
            *(log_return.update(close) for log_return in self.returns),
            self.volatility.update(close),
            self.spread.update(bar.spread_mean),
        ]
        return FeatureVector(
            symbol=bar.symbol,
            timeframe=bar.timeframe,
            bar_start_ms=bar.start_ms,
            values=dict(zip(self.names, values, strict=True)),
            is_warm=all(value is not None for value in values),
            schema_hash=self.schema_hash,
        )
