"""Incremental technical indicators: O(1) work per bar, values equal to TA-Lib's.

Each indicator is a small state object with ``update(...) -> float | None``; ``None``
means "still warming up" (never NaN). The conventions are TA-Lib's (0.6, default
compatibility, unstable period 0), and the arithmetic mirrors its operation order so
streaming and batch values agree to within float rounding:

- SMA: running sum over the window.
- EMA(n): ``k = 2 / (n + 1)``, seeded with the SMA of the first ``n`` values; first
  value at bar ``n - 1``.
- RSI(n): Wilder smoothing; the first averages are the simple means of the first ``n``
  changes; first value at bar ``n``; 0 when gains and losses are both exactly 0.
- MACD(fast, slow, signal): both EMAs first valid at bar ``slow - 1``, the fast one
  seeded with the SMA of the ``fast`` closes ending there (TA-Lib's alignment); the
  signal is an EMA of the MACD line; all three first emitted at bar
  ``slow + signal - 2``.
- Bollinger(n, k): SMA middle, bands at ``k`` population standard deviations.
- ATR(n): true range from bar 1 (``max(h - l, |c_prev - h|, |c_prev - l|)``); the first
  ATR (bar ``n``) is the SMA of the first ``n`` true ranges, then Wilder smoothing.

Beyond TA-Lib: log returns over ``h`` bars, realized volatility (root of the sum of
squared one-bar log returns over ``n`` bars, not annualized) and a z-score (population
standard deviation; 0 when the window has no spread).
"""

from __future__ import annotations

import math
from collections import deque


def _k(period: int) -> float:
    return 2.0 / (period + 1)


class RollingStats:
    """Mean and population variance of the last ``period`` values, amortized O(1).

    Sums are kept relative to an origin near the data (so prices around 1.08 with
    variances near 1e-10 do not cancel catastrophically) and recomputed from the window
    every ``period`` updates, so rounding never accumulates across the whole history.
    """

    def __init__(self, period: int) -> None:
        """Track the last ``period`` values."""
        self.period = period
        self.values: deque[float] = deque(maxlen=period)
        self._origin = 0.0
        self._sum = 0.0
        self._sum_squares = 0.0
        self._since_rebase = 0

    def update(self, value: float) -> bool:
        """Add ``value``; return True once the window is full."""
        if len(self.values) == self.period:
            oldest = self.values[0] - self._origin
            self._sum -= oldest
            self._sum_squares -= oldest * oldest
        self.values.append(value)
        shifted = value - self._origin
        self._sum += shifted
        self._sum_squares += shifted * shifted
        self._since_rebase += 1
        if self._since_rebase >= self.period:
            self._rebase()
        return len(self.values) == self.period

    def _rebase(self) -> None:
        self._origin = math.fsum(self.values) / len(self.values)
        deviations = [value - self._origin for value in self.values]
        self._sum = math.fsum(deviations)
        self._sum_squares = math.fsum(d * d for d in deviations)
        self._since_rebase = 0

    @property
    def mean(self) -> float:
        """The window mean."""
        return self._origin + self._sum / len(self.values)

    @property
    def variance(self) -> float:
        """The population variance of the window (never negative)."""
        count = len(self.values)
        centred = self._sum / count
        return max(0.0, self._sum_squares / count - centred * centred)


class Sma:
    """Simple moving average (TA-Lib's running-sum order)."""

    def __init__(self, period: int) -> None:
        """Average over ``period`` values."""
        self.period = period
        self.window: deque[float] = deque()
        self.total = 0.0

    def update(self, value: float) -> float | None:
        """Add a value; return the average once ``period`` values were seen."""
        self.window.append(value)
        self.total += value
        if len(self.window) < self.period:
            return None
        result = self.total / self.period
        self.total -= self.window.popleft()
        return result


class Ema:
    """Exponential moving average seeded with the SMA of its first ``period`` values."""

    def __init__(self, period: int) -> None:
        """Smooth with ``k = 2 / (period + 1)``."""
        self.period = period
        self.k = _k(period)
        self.value: float | None = None
        self._seed_total = 0.0
        self._seen = 0

    def seed(self, value: float) -> None:
        """Start from ``value`` (used by MACD's aligned fast EMA)."""
        self.value = value

    def update(self, value: float) -> float | None:
        """Add a value; return the EMA once warm."""
        if self.value is None:
            self._seed_total += value
            self._seen += 1
            if self._seen == self.period:
                self.value = self._seed_total / self.period
            return self.value
        self.value = ((value - self.value) * self.k) + self.value
        return self.value


class Rsi:
    """Relative strength index with Wilder smoothing."""

    def __init__(self, period: int = 14) -> None:
        """Use ``period`` changes."""
        self.period = period
        self.previous: float | None = None
        self.gain = 0.0
        self.loss = 0.0
        self.changes = 0

    def update(self, close: float) -> float | None:
        """Add a close; return the RSI once ``period`` changes were seen."""
        if self.previous is None:
            self.previous = close
            return None
        change = close - self.previous
        self.previous = close
        if self.changes >= self.period:
            self.gain *= self.period - 1
            self.loss *= self.period - 1
        if change < 0:
            self.loss -= change
        else:
            self.gain += change
        self.changes += 1
        if self.changes < self.period:
            return None
        self.gain /= self.period
        self.loss /= self.period
        total = self.gain + self.loss
        return 100.0 * (self.gain / total) if total != 0.0 else 0.0


class Macd:
    """MACD line, signal and histogram, aligned as TA-Lib aligns them."""

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        """Use the given EMA periods (TA-Lib swaps fast and slow if reversed)."""
        if slow < fast:
            fast, slow = slow, fast
        self.fast_period = fast
        self.slow = Ema(slow)
        self.fast = Ema(fast)
        self.recent: deque[float] = deque(maxlen=fast)
        self.signal = Ema(signal)

    def update(self, close: float) -> tuple[float, float, float] | None:
        """Add a close; return ``(macd, signal, histogram)`` once all are warm."""
        self.recent.append(close)
        slow = self.slow.update(close)
        if slow is None:
            return None
        if self.fast.value is None:
            self.fast.seed(sum(self.recent) / self.fast_period)
            fast = self.fast.value
        else:
            fast = self.fast.update(close)
        assert fast is not None
        line = fast - slow
        signal = self.signal.update(line)
        if signal is None:
            return None
        return line, signal, line - signal


class Bollinger:
    """Bollinger bands: SMA middle, ``k`` population standard deviations wide."""

    def __init__(self, period: int = 20, width: float = 2.0) -> None:
        """Use ``period`` values and ``width`` deviations."""
        self.sma = Sma(period)
        self.stats = RollingStats(period)
        self.width = width

    def update(self, close: float) -> tuple[float, float, float] | None:
        """Add a close; return ``(upper, middle, lower)`` once warm."""
        middle = self.sma.update(close)
        self.stats.update(close)
        if middle is None:
            return None
        band = math.sqrt(self.stats.variance) * self.width
        return middle + band, middle, middle - band


class Atr:
    """Average true range with Wilder smoothing."""

    def __init__(self, period: int = 14) -> None:
        """Use ``period`` true ranges."""
        self.period = period
        self.previous_close: float | None = None
        self.seed = Sma(period)
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        """Add a bar; return the ATR once ``period`` true ranges were seen."""
        previous, self.previous_close = self.previous_close, close
        if previous is None:
            return None
        true_range = max(high - low, abs(previous - high), abs(previous - low))
        if self.value is None:
            self.value = self.seed.update(true_range)
            return self.value
        self.value = (self.value * (self.period - 1) + true_range) / self.period
        return self.value


class LogReturn:
    """Log return over ``horizon`` bars."""

    def __init__(self, horizon: int) -> None:
        """Compare with the close ``horizon`` bars ago."""
        self.window = horizon + 1
        self.closes: deque[float] = deque(maxlen=self.window)

    def update(self, close: float) -> float | None:
        """Add a close; return ``ln(close / close[-horizon])`` once available."""
        self.closes.append(close)
        if len(self.closes) < self.window:
            return None
        return math.log(close / self.closes[0])


class RealizedVolatility:
    """Root of the sum of squared one-bar log returns over ``period`` bars."""

    def __init__(self, period: int = 20) -> None:
        """Use ``period`` returns."""
        self.returns = LogReturn(1)
        self.squares = RollingStats(period)

    def update(self, close: float) -> float | None:
        """Add a close; return the realized volatility once ``period`` returns were seen."""
        one_bar = self.returns.update(close)
        if one_bar is None or not self.squares.update(one_bar * one_bar):
            return None
        return math.sqrt(max(0.0, self.squares.mean * self.squares.period))


class ZScore:
    """How many population standard deviations a value is from its window mean."""

    #: Below this relative dispersion the window is treated as constant (z = 0).
    FLAT = 1e-12

    def __init__(self, period: int = 20) -> None:
        """Use ``period`` values."""
        self.stats = RollingStats(period)

    def update(self, value: float) -> float | None:
        """Add a value; return its z-score once the window is full."""
        if not self.stats.update(value):
            return None
        deviation = math.sqrt(self.stats.variance)
        mean = self.stats.mean
        if deviation <= self.FLAT * max(abs(mean), 1e-300):
            return 0.0
        return (value - mean) / deviation
