"""Random but plausible bar series for indicator tests."""

from __future__ import annotations

import numpy as np

from tickwave.contracts import Bar


def random_bars(
    seed: int, count: int, price: float, volatility: float, point: float, symbol: str = "EURUSD"
) -> list[Bar]:
    """A geometric random walk of mid closes with highs, lows and point-quantized spreads."""
    rng = np.random.default_rng(seed)
    closes = price * np.exp(np.cumsum(rng.normal(0.0, volatility, count)))
    opens = np.concatenate([[price], closes[:-1]])
    wick = np.abs(rng.normal(0.0, volatility, count)) * closes
    highs = np.maximum(opens, closes) + wick
    lows = np.minimum(opens, closes) - wick * rng.uniform(0.0, 1.0, count)
    spreads = point * rng.integers(1, 30, count)
    bars = []
    for index in range(count):
        half = spreads[index] / 2
        mid = (float(opens[index]), float(highs[index]), float(lows[index]), float(closes[index]))
        start_ms = 1_700_000_000_000 + index * 60_000
        bars.append(
            Bar(
                symbol=symbol,
                timeframe="1m",
                start_ms=start_ms,
                end_ms=start_ms + 60_000,
                bid_open=mid[0] - half,
                bid_high=mid[1] - half,
                bid_low=mid[2] - half,
                bid_close=mid[3] - half,
                ask_open=mid[0] + half,
                ask_high=mid[1] + half,
                ask_low=mid[2] + half,
                ask_close=mid[3] + half,
                mid_open=mid[0],
                mid_high=mid[1],
                mid_low=mid[2],
                mid_close=mid[3],
                tick_count=10,
                volume=10.0,
                spread_mean=float(spreads[index]),
                spread_max=float(spreads[index]),
            )
        )
    return bars
