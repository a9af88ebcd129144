"""Metrics of predicted probabilities, and a backtest of the signals they give, spread costs included.

Classification (class indices ``DOWN, FLAT, UP``): log loss, AUC (one-vs-rest, macro
over the classes present with both outcomes), accuracy, the multi-class Brier score
(sum over classes of the squared error, averaged over rows), the expected calibration
error per class (10 equal-width bins), and precision / recall at the signal threshold:
a row signals long or short by the same rule the streams use
(:class:`streams.signals.SignalRules`); a long is right when the label is ``up``, a short
when it is ``down``.

Trading, per symbol in time order: the signal at the close of bar t is the target
position for the next bar (+1 long, -1 short, 0 flat, times ``lots``), marked at the
mid. A position held from bar t to t+1 earns ``position x (mid[t+1] - mid[t])``.
Changing the position at bar t crosses half the spread at bar t per unit
(``|position - previous| x spread / 2``); a position still open at the end is closed
at half the last row's spread. Net P&L is in price units, then in pips (price / pip
size) and in the account currency (price x lots x contract size, converted).

- A **trade** is a run of bars with the same non-zero position; its P&L is the sum of
  its bars' P&L less its entry and exit half-spreads. **Hit rate** = share of trades
  with P&L > 0.
- **Turnover** = position units traded per bar (a flip long to short counts 2).
- **Sharpe** = mean / standard deviation of the per-bar portfolio P&L (all symbols
  summed per bar start), times the square root of the bars in a 252-day year.
- **Max drawdown** = largest fall of the cumulative P&L from its running peak.

Money that is summed goes through :mod:`tickwave.money`. The account currency is USD,
as in the execution process: USD-quoted symbols need no conversion, USD-based ones
(USDJPY) divide by the mid, crosses are taken as USD-quoted (an approximation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from models.dataset import DOWN, LABELS, UP
from streams.signals import SignalRules
from tickwave.money import MONEY_CONTEXT, exact_sum

ACCOUNT_CURRENCY = "USD"
CALIBRATION_BINS = 10
TRADING_DAYS_PER_YEAR = 252
_EPSILON = 1e-15


# ---------------------------------------------------------------------------------------
# Signals and classification metrics
# ---------------------------------------------------------------------------------------


def signal_positions(probabilities: np.ndarray, rules: SignalRules) -> np.ndarray:
    """Return +1 (long), -1 (short) or 0 (flat) per row: ``streams.signals.signal_from``'s rule, vectorised."""
    up = probabilities[:, UP].astype(np.float64)
    down = probabilities[:, DOWN].astype(np.float64)
    edge = up - down
    is_long = (up >= rules.entry_probability) & (edge >= rules.min_edge)
    is_short = ~is_long & (down >= rules.entry_probability) & (-edge >= rules.min_edge)
    return is_long.astype(np.int8) - is_short.astype(np.int8)


@dataclass(frozen=True)
class Reliability:
    """Calibration curve of one class: mean predicted probability vs observed frequency per bin."""

    label: str
    predicted: tuple[float, ...]
    observed: tuple[float, ...]
    counts: tuple[int, ...]
    error: float  # expected calibration error: bin-weighted mean |predicted - observed|


def reliability(labels: np.ndarray, probabilities: np.ndarray, class_index: int) -> Reliability:
    """Return the calibration curve and expected calibration error of one class."""
    predicted = probabilities[:, class_index].astype(np.float64)
    actual = (labels == class_index).astype(np.float64)
    bins = np.minimum((predicted * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    means, frequencies, counts = [], [], []
    error = 0.0
    for index in range(CALIBRATION_BINS):
        members = bins == index
        count = int(members.sum())
        if not count:
            continue
        mean, frequency = float(predicted[members].mean()), float(actual[members].mean())
        means.append(mean)
        frequencies.append(frequency)
        counts.append(count)
        error += count / len(labels) * abs(mean - frequency)
    return Reliability(LABELS[class_index], tuple(means), tuple(frequencies), tuple(counts), error)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


@dataclass(frozen=True)
class ClassificationMetrics:
    """Probabilistic and threshold metrics of one set of predictions (None: undefined)."""

    rows: int
    log_loss: float
    auc: float | None
    accuracy: float
    brier: float
    calibration_error: float  # the worst class's expected calibration error
    signals: int
    precision: float | None  # share of long/short signals whose direction came true
    recall: float | None  # share of up/down rows that got the matching signal
    precision_long: float | None
    recall_long: float | None
    precision_short: float | None
    recall_short: float | None

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Return the defined metrics as ``{prefix + name: value}``."""
        return {f"{prefix}{name}": float(value) for name, value in self.__dict__.items() if value is not None}


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Return the mean negative log probability of the true class (clipped at 1e-15)."""
    chosen = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return float(-np.mean(np.log(np.clip(chosen, _EPSILON, 1.0))))


def classification_metrics(labels: np.ndarray, probabilities: np.ndarray, rules: SignalRules) -> ClassificationMetrics:
    """Score probabilities (rows x 3, class order ``LABELS``) against class indices."""
    probabilities = probabilities.astype(np.float64)
    onehot = np.eye(len(LABELS))[labels]
    aucs = [
        float(roc_auc_score(onehot[:, index], probabilities[:, index]))
        for index in range(len(LABELS))
        if 0 < onehot[:, index].sum() < len(labels)
    ]
    positions = signal_positions(probabilities, rules)
    longs, shorts = positions == 1, positions == -1
    ups, downs = labels == UP, labels == DOWN
    right_long, right_short = int((longs & ups).sum()), int((shorts & downs).sum())
    return ClassificationMetrics(
        rows=len(labels),
        log_loss=log_loss(labels, probabilities),
        auc=float(np.mean(aucs)) if aucs else None,
        accuracy=float(np.mean(probabilities.argmax(axis=1) == labels)),
        brier=float(np.mean(np.sum((probabilities - onehot) ** 2, axis=1))),
        calibration_error=max(reliability(labels, probabilities, index).error for index in range(len(LABELS))),
        signals=int(longs.sum() + shorts.sum()),
        precision=_ratio(right_long + right_short, int(longs.sum() + shorts.sum())),
        recall=_ratio(right_long + right_short, int(ups.sum() + downs.sum())),
        precision_long=_ratio(right_long, int(longs.sum())),
        recall_long=_ratio(right_long, int(ups.sum())),
        precision_short=_ratio(right_short, int(shorts.sum())),
        recall_short=_ratio(right_short, int(downs.sum())),
    )


# ---------------------------------------------------------------------------------------
# Trading evaluation
# ---------------------------------------------------------------------------------------


def default_pip_size(symbol: str, overrides: Mapping[str, float]) -> float:
    """Return the configured pip size of ``symbol``, else 0.01 for JPY-quoted pairs and 0.0001 otherwise."""
    if symbol in overrides:
        return overrides[symbol]
    return 0.01 if symbol.upper().endswith("JPY") else 0.0001


def timeframe_seconds(timeframe: str) -> int:
    """Return the length of a timeframe such as ``1s``, ``5m``, ``1h``, ``1d`` in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    return int(timeframe[:-1]) * units[timeframe[-1]]


@dataclass(frozen=True)
class BacktestSettings:
    """Size, contract and pip sizes of the trading evaluation."""

    lots: float = 1.0
    contract_size: float = 100_000.0
    pip_sizes: Mapping[str, float] = field(default_factory=dict)
    bars_per_year: float = TRADING_DAYS_PER_YEAR * 86_400 / 60


@dataclass(frozen=True)
class TradingResult:
    """The backtest of one set of signals."""

    bars: int
    trades: int
    hit_rate: float | None
    pnl_pips: float
    pnl_account: Decimal
    sharpe: float
    max_drawdown_pips: float
    max_drawdown_account: Decimal
    turnover: float
    curve: pd.DataFrame  # per bar start: pnl_account, equity_account, drawdown_account, equity_pips

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Return the figures as ``{prefix + name: value}`` (money as floats, rounded to cents)."""
        figures = {
            "bars": float(self.bars), "trades": float(self.trades), "pnl_pips": self.pnl_pips,
            "pnl_account": round(float(self.pnl_account), 2), "sharpe": self.sharpe,
            "max_drawdown_pips": self.max_drawdown_pips,
            "max_drawdown_account": round(float(self.max_drawdown_account), 2), "turnover": self.turnover,
        }  # fmt: skip
        if self.hit_rate is not None:
            figures["hit_rate"] = self.hit_rate
        return {f"{prefix}{name}": value for name, value in figures.items()}


def _to_account(symbol: str, quote_amounts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    # USD-based symbols earn in the quote currency: divide by the mid at which the P&L is marked.
    if symbol.upper().startswith(ACCOUNT_CURRENCY) and not symbol.upper().endswith(ACCOUNT_CURRENCY):
        return quote_amounts / rates
    return quote_amounts


@dataclass(frozen=True)
class _SymbolLedger:
    net_price: np.ndarray  # per bar, price units
    trade_pnls: list[float]  # price units
    traded_units: float


def _symbol_ledger(positions: np.ndarray, mid: np.ndarray, next_mid: np.ndarray, spread: np.ndarray) -> _SymbolLedger:
    previous = np.concatenate(([0], positions[:-1])).astype(np.float64)
    current = positions.astype(np.float64)
    half_spread = spread / 2.0
    exit_cost = np.where(current != previous, np.abs(previous), 0.0) * half_spread
    entry_cost = np.where(current != previous, np.abs(current), 0.0) * half_spread
    final_exit = np.zeros(len(current))
    final_exit[-1] = abs(current[-1]) * half_spread[-1]
    gross = current * (next_mid - mid)
    net = gross - exit_cost - entry_cost - final_exit
    trade_pnls: list[float] = []
    start = None
    for index in range(len(current) + 1):
        changed = index == len(current) or current[index] != previous[index]
        if changed and start is not None:
            exit_part = exit_cost[index] if index < len(current) else final_exit[-1]
            trade_pnls.append(float(gross[start:index].sum() - entry_cost[start] - exit_part))
            start = None
        if changed and index < len(current) and current[index] != 0:
            start = index
    traded = float(np.abs(current - previous).sum() + abs(current[-1]))
    return _SymbolLedger(net, trade_pnls, traded)


def _drawdowns(equity: np.ndarray) -> np.ndarray:
    # Distance below the running peak (the curve starts at 0 before the first bar).
    return np.maximum.accumulate(np.maximum(equity, 0.0)) - equity


def _max_drawdown(pnl: list[Decimal]) -> Decimal:
    equity, peak, worst = Decimal(0), Decimal(0), Decimal(0)
    for amount in pnl:
        equity = MONEY_CONTEXT.add(equity, amount)
        peak = max(peak, equity)
        worst = max(worst, MONEY_CONTEXT.subtract(peak, equity))
    return worst


def backtest(frame: pd.DataFrame, positions: np.ndarray, settings: BacktestSettings) -> TradingResult:
    """Trade ``positions`` (-1/0/+1 per row) over the rows of ``frame``, symbol by symbol in time order.

    ``frame`` needs ``symbol``, ``bar_start_ms``, ``mid_close``, ``next_mid_close`` and
    ``spread``; rows need not be grouped by symbol.
    """
    per_bar: list[pd.DataFrame] = []
    trade_pnls_pips: list[float] = []
    traded_units = 0.0
    for symbol, rows in frame.assign(position=positions).groupby("symbol", sort=True):
        rows = rows.sort_values("bar_start_ms")
        mid, next_mid = rows["mid_close"].to_numpy(np.float64), rows["next_mid_close"].to_numpy(np.float64)
        ledger = _symbol_ledger(rows["position"].to_numpy(), mid, next_mid, rows["spread"].to_numpy(np.float64))
        pip = default_pip_size(str(symbol), settings.pip_sizes)
        units = settings.lots * settings.contract_size
        per_bar.append(pd.DataFrame({
            "bar_start_ms": rows["bar_start_ms"].to_numpy(np.int64),
            "pnl_pips": ledger.net_price / pip,
            "pnl_account": _to_account(str(symbol), ledger.net_price * units, next_mid),
        }))  # fmt: skip
        trade_pnls_pips.extend(pnl / pip for pnl in ledger.trade_pnls)
        traded_units += ledger.traded_units
    ledger_rows = (
        pd.concat(per_bar, ignore_index=True)
        if per_bar
        else pd.DataFrame({"bar_start_ms": [], "pnl_pips": [], "pnl_account": []})
    )
    by_bar = ledger_rows.groupby("bar_start_ms", sort=True)
    portfolio = by_bar[["pnl_pips", "pnl_account"]].sum()
    step_pnl = [exact_sum(amounts) for _, amounts in by_bar["pnl_account"]]  # exact, per bar start
    curve = pd.DataFrame({
        "bar_start_ms": portfolio.index.to_numpy(np.int64),
        "pnl_account": portfolio["pnl_account"].to_numpy(),
        "equity_account": np.cumsum(portfolio["pnl_account"].to_numpy()),
        "equity_pips": np.cumsum(portfolio["pnl_pips"].to_numpy()),
    })  # fmt: skip
    curve["drawdown_account"] = _drawdowns(curve["equity_account"].to_numpy())
    equity_pips = curve["equity_pips"].to_numpy()
    per_step = curve["pnl_account"].to_numpy()
    deviation = float(np.std(per_step, ddof=1)) if len(per_step) > 1 else 0.0
    wins = sum(1 for pnl in trade_pnls_pips if pnl > 0)
    return TradingResult(
        bars=len(frame),
        trades=len(trade_pnls_pips),
        hit_rate=wins / len(trade_pnls_pips) if trade_pnls_pips else None,
        pnl_pips=math.fsum(ledger_rows["pnl_pips"]),
        pnl_account=exact_sum(step_pnl),
        sharpe=float(np.mean(per_step) / deviation * math.sqrt(settings.bars_per_year)) if deviation > 0 else 0.0,
        max_drawdown_pips=float(_drawdowns(equity_pips).max()) if len(equity_pips) else 0.0,
        max_drawdown_account=_max_drawdown(step_pnl),
        turnover=traded_units / len(frame) if len(frame) else 0.0,
        curve=curve,
    )
