"""Synthetic markets whose edge is known: a planted, predictable component of stated strength, or none at all.

Each bar's log return (close to close) follows an AR(1),

    r[t] = phi * r[t-1] + e[t],   e ~ Normal(0, volatility * sqrt(1 - phi^2)),

so the returns' standard deviation is ``volatility`` whatever ``phi``, and ``phi = 0`` is a
random walk of the same volatility. Given the bar that just closed, the next return is
``Normal(phi * r[t], ...)``: its direction follows the bar's own log return, which the
streams compute as the feature ``logret_1``. That is the whole edge, and its strength is
stated by ``phi``: for Gaussian returns the next bar moves in the direction of
``phi * r[t]`` with probability ``1/2 + arcsin(|phi|) / pi`` (:func:`direction_hit_rate`:
63 % at ``|phi| = 0.4``, 50 % for the random walk). A negative ``phi`` plants mean
reversion: the last bar's direction (a promotion baseline) then loses, as it should when
a model has found something the baselines have not.

The bars reach the pipeline as ticks, so the streams build them: ``ticks_per_bar`` ticks
per bar per symbol, the last one exactly on the bar's close (noise on the close would
itself plant mean reversion, an edge in a random walk), the earlier ones between the
previous close and this one with some noise (the bar's high and low). Prices are rounded
to the symbol's quoted digits; the spread is constant. Deterministic for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from tickwave.contracts import Tick

# symbol -> (base mid, quoted digits)
BASES: dict[str, tuple[float, int]] = {
    "EURUSD": (1.085, 5),
    "GBPUSD": (1.27, 5),
    "AUDUSD": (0.655, 5),
    "USDCHF": (0.885, 5),
    "USDJPY": (151.25, 3),
    "XAUUSD": (2300.0, 2),
}


def direction_hit_rate(phi: float) -> float:
    """Return how often the next bar moves in the direction of ``phi * r[t]`` (Gaussian AR(1) returns)."""
    return 0.5 + math.asin(abs(phi)) / math.pi


def planted_returns(bars: int, phi: float, volatility: float, rng: np.random.Generator) -> np.ndarray:
    """Return ``bars`` log returns of an AR(1) with coefficient ``phi`` and standard deviation ``volatility``.

    The first return is drawn from the stationary distribution, so the series has no start-up transient.

    Raises:
        ValueError: unless ``-1 < phi < 1`` and ``volatility > 0``.
    """
    if not -1.0 < phi < 1.0 or not volatility > 0:
        raise ValueError(f"phi must lie in (-1, 1) and volatility be positive (got {phi}, {volatility})")
    shocks = rng.normal(0.0, volatility * math.sqrt(1.0 - phi * phi), bars)
    returns = np.empty(bars)
    returns[0] = rng.normal(0.0, volatility)
    for index in range(1, bars):
        returns[index] = phi * returns[index - 1] + shocks[index]
    return returns


def planted_edge_ticks(
    symbols: Mapping[str, int],
    start_ms: int,
    bar_ms: int,
    bars: int,
    phi: float,
    volatility: float,
    ticks_per_bar: int = 4,
    spread_bps: float = 0.2,
) -> list[Tick]:
    """Return the ticks of ``bars`` bars of each symbol, whose close-to-close log returns follow the AR(1).

    Args:
        symbols: symbol -> seed of its own series (the symbol's base and digits come from ``BASES``).
        start_ms: the first bar's start (a multiple of ``bar_ms``).
        bar_ms: the bar length the streams will build (e.g. 60,000 for 1 min bars).
        bars: how many bars per symbol.
        phi: the planted AR(1) coefficient of the bar returns (0: a random walk).
        volatility: the standard deviation of a bar's log return.
        ticks_per_bar: ticks per bar and symbol, evenly spaced; the last is the close.
        spread_bps: the constant spread (ask - bid) in basis points of the base mid.

    Returns:
        The ticks of every symbol, in time order (symbol order within a millisecond).

    Raises:
        ValueError: for a symbol outside ``BASES``, or a ``phi`` / ``volatility`` out of range.
    """
    out: list[Tick] = []
    step_ms = bar_ms // ticks_per_bar
    for symbol, seed in symbols.items():
        if symbol not in BASES:
            raise ValueError(f"no base price for {symbol}: one of {', '.join(BASES)}")
        base, digits = BASES[symbol]
        rng = np.random.default_rng(seed)
        closes = base * np.exp(np.cumsum(planted_returns(bars, phi, volatility, rng)))
        previous = np.concatenate([[base], closes[:-1]])
        half_spread = base * spread_bps * 1e-4 / 2
        wobble = rng.normal(0.0, volatility / 2, (bars, ticks_per_bar)) * base
        for bar in range(bars):
            for step in range(ticks_per_bar):
                if step == ticks_per_bar - 1:
                    mid = float(closes[bar])  # the close is the planted path, nothing else
                else:
                    share = (step + 1) / ticks_per_bar
                    mid = float(previous[bar] + share * (closes[bar] - previous[bar]) + wobble[bar, step])
                mid = round(mid, digits)
                at_ms = start_ms + bar * bar_ms + step * step_ms
                out.append(
                    Tick(
                        symbol=symbol,
                        time_ms=at_ms,
                        seq=0,
                        bid=round(mid - half_spread, digits + 1),
                        ask=round(mid + half_spread, digits + 1),
                        volume=1.0,
                    )
                )
    return sorted(out, key=lambda tick: (tick.time_ms, tick.symbol))
