"""Synthetic markets for the models tests: bars with a little momentum, features from the streams' own code."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
import pandas as pd

from models.dataset import BAR_COLUMNS
from streams.features import FeatureSpec, FeatureState
from tickwave.contracts import Bar

T0 = 1_700_000_040_000  # a minute boundary
MINUTE = 60_000
BASES = {"EURUSD": (1.085, 0.00002), "USDJPY": (151.25, 0.002), "GBPUSD": (1.27, 0.00002)}


def momentum_bars(symbol: str, count: int, seed: int, momentum: float = 0.3, volatility: float = 2e-4) -> list[Bar]:
    """One symbol's 1m bars: log returns follow an AR(1) with coefficient ``momentum``."""
    rng = np.random.default_rng(seed)
    base, half_spread = BASES.get(symbol, (1.0, 0.00002))
    shocks = rng.normal(0.0, volatility, count)
    returns = np.zeros(count)
    for index in range(1, count):
        returns[index] = momentum * returns[index - 1] + shocks[index]
    closes = base * np.exp(np.cumsum(returns))
    opens = np.concatenate([[base], closes[:-1]])
    wick = np.abs(rng.normal(0.0, volatility / 2, count)) * closes
    bars = []
    for index in range(count):
        start_ms = T0 + index * MINUTE
        spread = 2 * half_spread * (1 + index % 3)
        close, open_ = float(closes[index]), float(opens[index])
        high, low = max(open_, close) + float(wick[index]), min(open_, close) - float(wick[index])
        bars.append(
            Bar(
                symbol=symbol,
                timeframe="1m",
                start_ms=start_ms,
                end_ms=start_ms + MINUTE,
                bid_open=open_ - spread / 2,
                bid_high=high - spread / 2,
                bid_low=low - spread / 2,
                bid_close=close - spread / 2,
                ask_open=open_ + spread / 2,
                ask_high=high + spread / 2,
                ask_low=low + spread / 2,
                ask_close=close + spread / 2,
                mid_open=open_,
                mid_high=high,
                mid_low=low,
                mid_close=close,
                tick_count=5,
                volume=5.0,
                spread_mean=spread,
                spread_max=spread,
            )
        )
    return bars


def bars_frame(bars: Sequence[Bar]) -> pd.DataFrame:
    """Bars as the warehouse returns them (``BAR_COLUMNS``)."""
    return pd.DataFrame([msgspec.structs.asdict(bar) for bar in bars], columns=list(BAR_COLUMNS))


def features_frame(bars: Sequence[Bar], spec: FeatureSpec) -> pd.DataFrame:
    """Run the streams' feature state over the bars (per symbol) and tabulate like the warehouse."""
    states: dict[str, FeatureState] = {}
    rows = []
    for bar in sorted(bars, key=lambda bar: (bar.start_ms, bar.symbol)):
        vector = states.setdefault(bar.symbol, FeatureState(spec)).update(bar)
        assert vector is not None
        values = {name: np.nan if value is None else value for name, value in vector.values.items()}
        rows.append(
            {
                "symbol": vector.symbol,
                "bar_start_ms": vector.bar_start_ms,
                "is_warm": vector.is_warm,
                "schema_hash": vector.schema_hash,
                **values,
            }
        )
    return pd.DataFrame(rows)


def market(
    symbols: Sequence[str] = ("EURUSD", "USDJPY"),
    count: int = 1500,
    seed: int = 7,
    momentum: float = 0.3,
    spec: FeatureSpec | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, list[Bar]]:
    """Features and bars of several symbols over the same minutes."""
    spec = spec or FeatureSpec()
    bars = [
        bar
        for offset, symbol in enumerate(symbols)
        for bar in momentum_bars(symbol, count, seed + offset, momentum=momentum)
    ]
    return features_frame(bars, spec), bars_frame(bars), bars
