"""A seeded market simulator: quotes with stochastic volatility, jumps and a trading day.

For each symbol, in steps of simulated time:

- **stochastic volatility**: log-volatility follows an Ornstein-Uhlenbeck process around
  the symbol's annual volatility (mean-reverting over ~``VOL_HALF_LIFE_S``);
- **jumps**: Poisson arrivals (``jumps_per_day``), each a move of ``jump_sigmas`` one-minute
  standard deviations, either way;
- **intraday activity**: tick arrival and volatility follow a UTC session curve (quiet in
  Asia, busy at the London/New York overlap, thin at the 21:00 rollover);
- **spreads**: a base width in ticks that widens with volatility, in thin sessions and
  (four-fold) in the 21:00 UTC rollover hour;
- **prices**: a geometric random walk of the mid, quoted as bid/ask on the symbol's tick
  grid with its digits; a tick is kept only when bid or ask changed (as in MT5), with
  ``flags`` saying which (``TICK_FLAG_BID`` 2, ``TICK_FLAG_ASK`` 4).

The tick rate is the average over a day across all symbols (split by ``weight``). Same
seed, symbols, rate and start: the same ticks, to the last digit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from streams.ingest.batches import Candidates, FloatArray, IntArray
from tickwave.config import SymbolSpec

SECONDS_PER_YEAR = 365.25 * 86_400
VOL_HALF_LIFE_S = 1_800.0
VOL_OF_LOG_VOL = 0.6  # stationary std of log-volatility around its mean
TICK_FLAG_BID, TICK_FLAG_ASK = 0x02, 0x04

# Relative activity by UTC hour (0..23): Asia, London open, London/New York overlap, rollover.
_SESSION_CURVE = np.array(
    [
        0.45,
        0.45,
        0.5,
        0.5,
        0.5,
        0.55,
        0.7,
        1.0,
        1.3,
        1.3,
        1.2,
        1.2,
        1.4,
        1.7,
        1.8,
        1.6,
        1.3,
        1.0,
        0.8,
        0.7,
        0.6,
        0.3,
        0.35,
        0.4,
    ]
)
_SESSION_CURVE = _SESSION_CURVE / _SESSION_CURVE.mean()
_ROLLOVER_HOUR = 21


@dataclass(frozen=True)
class SymbolProfile:
    """How one simulated symbol behaves."""

    start_price: float
    annual_vol: float
    spread_ticks: float
    weight: float = 1.0
    jumps_per_day: float = 4.0
    jump_sigmas: float = 6.0


PROFILES: dict[str, SymbolProfile] = {
    "EURUSD": SymbolProfile(1.08500, 0.07, 6, weight=1.5),
    "GBPUSD": SymbolProfile(1.26500, 0.08, 9),
    "USDCHF": SymbolProfile(0.88200, 0.08, 10),
    "AUDUSD": SymbolProfile(0.65500, 0.10, 8),
    "NZDUSD": SymbolProfile(0.61000, 0.10, 12),
    "USDCAD": SymbolProfile(1.35500, 0.07, 12),
    "EURGBP": SymbolProfile(0.85700, 0.06, 10),
    "USDJPY": SymbolProfile(150.000, 0.09, 8, weight=1.2),
    "EURJPY": SymbolProfile(162.500, 0.10, 14),
    "XAUUSD": SymbolProfile(2050.00, 0.15, 25, weight=1.2, jumps_per_day=6.0),
}


def profile_for(symbol: str, spec: SymbolSpec) -> SymbolProfile:
    """Return the symbol's profile, or a plain one (price 100, 10 % volatility, 2-tick spread)."""
    return PROFILES.get(symbol) or SymbolProfile(round(100.0, spec.digits), 0.10, 2)


def session_activity(time_ms: int) -> float:
    """Return the relative activity (mean 1 over a day) at a UTC time, interpolated by the hour."""
    hours = (time_ms / 3_600_000.0) % 24
    low = int(hours)
    fraction = hours - low
    return float(_SESSION_CURVE[low] * (1 - fraction) + _SESSION_CURVE[(low + 1) % 24] * fraction)


@dataclass
class _State:
    log_mid: float
    log_vol_deviation: float
    bid: float
    ask: float


class SimulatedMarket:
    """Quotes for several symbols, advanced step by step from ``start_ms``.

    Args:
        symbols: the symbols to quote (each must be in ``registry``).
        registry: digits and tick size per symbol.
        rate: average ticks per second over a day, all symbols together.
        seed: the random seed.
        start_ms: the simulated UTC time the market starts at.
    """

    def __init__(
        self, symbols: list[str], registry: Mapping[str, SymbolSpec], rate: float, seed: int, start_ms: int
    ) -> None:
        unknown = [symbol for symbol in symbols if symbol not in registry]
        if unknown:
            raise KeyError(f"symbols {unknown} are not in the symbol registry ([symbols] settings)")
        if rate <= 0:
            raise ValueError(f"rate must be > 0 ticks/s, got {rate}")
        self.symbols = tuple(symbols)
        self.specs = [registry[symbol] for symbol in symbols]
        self.profiles = [profile_for(symbol, spec) for symbol, spec in zip(symbols, self.specs, strict=True)]
        total_weight = sum(profile.weight for profile in self.profiles)
        self.rates = [rate * profile.weight / total_weight for profile in self.profiles]
        self.now_ms = start_ms
        self._rng = np.random.Generator(np.random.PCG64(seed))
        self._states = [_State(math.log(p.start_price), 0.0, math.nan, math.nan) for p in self.profiles]

    def advance(self, step_ms: int) -> Candidates:
        """Return every tick in ``[now, now + step_ms)`` (all symbols, ordered by time) and move on."""
        start, parts = self.now_ms, []
        for index in range(len(self.symbols)):
            times, bids, asks, flags = self._symbol_step(index, start, step_ms)
            parts.append((np.full(len(times), index, dtype=np.int32), times, bids, asks, flags))
        self.now_ms = start + step_ms
        codes, times, bids, asks, flags = (np.concatenate(column) for column in zip(*parts, strict=True))
        order = np.argsort(times, kind="stable")
        codes, times, bids, asks, flags = codes[order], times[order], bids[order], asks[order], flags[order]
        zeros = np.zeros(len(times))
        symbols = self.symbols

        def raw(row: int) -> str:
            return json.dumps(
                {
                    "symbol": symbols[codes[row]],
                    "time_ms": int(times[row]),
                    "bid": float(bids[row]),
                    "ask": float(asks[row]),
                    "flags": int(flags[row]),
                }
            )

        return Candidates(symbols, codes, times, bids, asks, zeros, zeros.copy(), flags, raw)

    def _symbol_step(
        self, index: int, start_ms: int, step_ms: int
    ) -> tuple[IntArray, FloatArray, FloatArray, IntArray]:
        rng, state, profile, spec = self._rng, self._states[index], self.profiles[index], self.specs[index]
        step_s = step_ms / 1000.0
        activity = session_activity(start_ms + step_ms // 2)
        # Log-volatility: exact OU transition over the step.
        reversion = math.log(2) / VOL_HALF_LIFE_S
        decay = math.exp(-reversion * step_s)
        state.log_vol_deviation = state.log_vol_deviation * decay + VOL_OF_LOG_VOL * math.sqrt(
            1 - decay * decay
        ) * float(rng.standard_normal())
        regime = math.exp(state.log_vol_deviation - VOL_OF_LOG_VOL**2 / 2)  # stochastic part, mean 1
        vol_factor = regime * math.sqrt(activity)
        sigma_per_s = profile.annual_vol * vol_factor / math.sqrt(SECONDS_PER_YEAR)
        count = int(rng.poisson(self.rates[index] * activity * math.sqrt(vol_factor) * step_s))
        offsets = np.sort(rng.integers(0, step_ms, size=count))
        moves = rng.standard_normal(count) * sigma_per_s * math.sqrt(step_s / max(count, 1))
        jumps = int(rng.poisson(profile.jumps_per_day * activity * step_s / 86_400))
        if jumps and count:
            where = rng.integers(0, count, size=jumps)
            sizes = rng.choice([-1.0, 1.0], size=jumps) * profile.jump_sigmas * sigma_per_s * math.sqrt(60.0)
            np.add.at(moves, where, sizes)
        log_mids = state.log_mid + np.cumsum(moves)
        if count:
            state.log_mid = float(log_mids[-1])
        # Wider when volatile, narrower when the session is liquid, much wider at the rollover.
        rollover = 4.0 if int((start_ms / 3_600_000.0) % 24) == _ROLLOVER_HOUR else 1.0
        width = profile.spread_ticks * regime**0.7 * activity**-0.3 * rollover
        widths = np.maximum(1, np.rint(width * rng.uniform(0.8, 1.25, size=count)))
        tick = spec.tick_size
        bid_ticks = np.floor(np.exp(log_mids) / tick - widths / 2)
        bids = np.round(bid_ticks * tick, spec.digits)
        asks = np.round((bid_ticks + widths) * tick, spec.digits)
        previous_bid = np.concatenate(([state.bid], bids[:-1]))
        previous_ask = np.concatenate(([state.ask], asks[:-1]))
        flags = np.where(bids != previous_bid, TICK_FLAG_BID, 0) | np.where(asks != previous_ask, TICK_FLAG_ASK, 0)
        changed = flags != 0
        if count:
            state.bid, state.ask = float(bids[-1]), float(asks[-1])
        times = (start_ms + offsets).astype(np.int64)
        return times[changed], bids[changed], asks[changed], flags[changed].astype(np.int64)
