"""Per-symbol feature state: each closed bar in, one ``FeatureVector`` out, O(1) per bar.

Indicators run on the bar's mid prices (ATR on mid high/low/close) and the spread
z-score on the bar's mean spread. A value still warming up is ``None``; the vector's
``is_warm`` is True once every value is a number. ``schema_hash`` names the feature
set (names, model inputs, order and parameters), so a model trained on one set refuses
another.

Every vector carries two kinds of values:

- the **levels** (``sma_20``, ``ema_12``, ``bb_upper``, ``macd``, ``atr_14``...), in price
  units: what analysts and the boards plot. They differ by symbol (1.1 vs 150 vs 2,300)
  and drift over time, so no model takes them;
- the **model inputs** (:attr:`FeatureSpec.model_names`), all scale-free: the close
  relative to each average, EMA spreads and MACD divided by the ATR, Bollinger %B and
  bandwidth, ATR as a share of the close, RSI, log returns, realized volatility, the
  spread in bps and its z-score. Multiplying every price of a series by any positive
  factor leaves each of them unchanged (a property test checks it), so one model can
  be pooled across symbols and over years.

A ratio whose denominator is (relatively) zero (an ATR or a Bollinger band of a flat
series) is 0 (%B: 0.5, the middle), not an error: a flat market is a valid input.

A value that is not finite is stored as null, never raised: the vector is then not warm
(no model scores it), and the symbol's indicators for that timeframe start over, since
an infinity inside a running sum or an EMA would stay there. Validation bounds every tick
(``tickwave.validation``), so this is the last line, not the rule.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from streams.indicators import Atr, Bollinger, Ema, LogReturn, Macd, RealizedVolatility, Rsi, Sma, ZScore
from tickwave.contracts import Bar, FeatureVector

logger = logging.getLogger(__name__)

FLAT = 1e-12  # a denominator below this share of the close counts as zero


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
    def level_names(self) -> tuple[str, ...]:
        """The indicators as the streams always stored them: price levels, and RSI, returns, volatility, z-score."""
        return (
            *(f"sma_{period}" for period in self.sma_periods),
            *(f"ema_{period}" for period in self.ema_periods),
            f"rsi_{self.rsi_period}",
            "macd",
            "macd_signal",
            "macd_hist",
            "bb_upper",
            "bb_middle",
            "bb_lower",
            f"atr_{self.atr_period}",
            *(f"logret_{horizon}" for horizon in self.return_horizons),
            f"rvol_{self.volatility_period}",
            f"spread_z_{self.spread_period}",
        )

    @property
    def ratio_names(self) -> tuple[str, ...]:
        """The scale-free values derived from the levels (stored after them)."""
        pairs = itertools.pairwise(self.ema_periods)
        return (
            *(f"close_sma_{period}" for period in self.sma_periods),
            *(f"close_ema_{period}" for period in self.ema_periods),
            *(f"ema_spread_{fast}_{slow}_atr" for fast, slow in pairs),
            "macd_atr",
            "macd_signal_atr",
            "macd_hist_atr",
            "bb_pct_b",
            "bb_bandwidth",
            f"atr_{self.atr_period}_pct",
            "spread_bps",
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Every stored value's name, in the order of ``FeatureVector.values``."""
        return (*self.level_names, *self.ratio_names)

    @property
    def model_names(self) -> tuple[str, ...]:
        """The model inputs, in the order models receive them: every one scale-free."""
        return (
            *self.ratio_names[:-1],
            f"rsi_{self.rsi_period}",
            *(f"logret_{horizon}" for horizon in self.return_horizons),
            f"rvol_{self.volatility_period}",
            "spread_bps",
            f"spread_z_{self.spread_period}",
        )

    @property
    def schema_hash(self) -> str:
        """A short hash of the names, the model inputs and the parameters."""
        text = json.dumps({"names": self.names, "inputs": self.model_names, "params": asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ratio(numerator: float | None, denominator: float | None, close: float, flat: float = 0.0) -> float | None:
    # numerator / denominator, ``flat`` when the denominator is (relatively) zero; None while either warms up.
    if numerator is None or denominator is None:
        return None
    if abs(denominator) <= FLAT * abs(close):
        return flat
    return numerator / denominator


def _relative(close: float, average: float | None) -> float | None:
    # close / average - 1, written as a difference so a close equal to its average gives exactly 0.
    return _ratio(None if average is None else close - average, average, close)


@dataclass
class FeatureState:
    """Indicator state of one symbol and timeframe."""

    spec: FeatureSpec = field(default_factory=FeatureSpec)

    def __post_init__(self) -> None:
        """Build one indicator object per feature."""
        self._start_indicators()
        self.last_bar_start_ms = -1

    def _start_indicators(self) -> None:
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

    def update(self, bar: Bar) -> FeatureVector | None:
        """Fold in a closed bar; return its feature vector (None for a repeated bar).

        A bar re-emitted after a recovery (same or earlier start) is ignored, so the
        indicators never count a bar twice.
        """
        if bar.start_ms <= self.last_bar_start_ms:
            return None
        self.last_bar_start_ms = bar.start_ms
        close = bar.mid_close
        smas = [sma.update(close) for sma in self.smas]
        emas = [ema.update(close) for ema in self.emas]
        macd = self.macd.update(close) or (None, None, None)
        bands = self.bollinger.update(close) or (None, None, None)
        atr = self.atr.update(bar.mid_high, bar.mid_low, close)
        levels: list[float | None] = [
            *smas,
            *emas,
            self.rsi.update(close),
            *macd,
            *bands,
            atr,
            *(log_return.update(close) for log_return in self.returns),
            self.volatility.update(close),
            self.spread.update(bar.spread_mean),
        ]
        values = [*levels, *self._ratios(close, smas, emas, macd, bands, atr, bar.spread_mean)]
        if not math.isfinite(sum(value for value in values if value is not None)):
            values = self._finite_or_null(bar, values)
        return FeatureVector(
            symbol=bar.symbol,
            timeframe=bar.timeframe,
            bar_start_ms=bar.start_ms,
            values=dict(zip(self.names, values, strict=True)),
            is_warm=all(value is not None for value in values),
            schema_hash=self.schema_hash,
        )

    def _finite_or_null(self, bar: Bar, values: list[float | None]) -> list[float | None]:
        # Null for each value that is not finite; the indicators start over (an infinity would stay in them).
        bad = [
            name
            for name, value in zip(self.names, values, strict=True)
            if value is not None and not math.isfinite(value)
        ]
        if not bad:
            return values  # finite values whose sum alone overflowed
        logger.warning(
            "features %s %s at %d: %s not finite, stored as null; the indicators start over",
            bar.symbol,
            bar.timeframe,
            bar.start_ms,
            ", ".join(bad),
        )
        self._start_indicators()
        return [value if value is None or math.isfinite(value) else None for value in values]

    @staticmethod
    def _ratios(
        close: float,
        smas: Sequence[float | None],
        emas: Sequence[float | None],
        macd: Sequence[float | None],
        bands: Sequence[float | None],
        atr: float | None,
        spread_mean: float,
    ) -> list[float | None]:
        # The scale-free values, in ``FeatureSpec.ratio_names`` order.
        upper, middle, lower = bands
        width = None if upper is None or lower is None else upper - lower
        emas_spread = [
            None if fast is None or slow is None else _ratio(fast - slow, atr, close)
            for fast, slow in itertools.pairwise(emas)
        ]
        return [
            *(_relative(close, sma) for sma in smas),
            *(_relative(close, ema) for ema in emas),
            *emas_spread,
            *(_ratio(value, atr, close) for value in macd),
            _ratio(None if lower is None else close - lower, width, close, flat=0.5),
            _ratio(width, middle, close),
            _ratio(atr, close, close),
            _ratio(spread_mean * 10_000.0, close, close),
        ]
