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
size) and in the account currency (price x lots x contract size, converted). Prices
enter through their shortest repr and every amount is an exact decimal
(:mod:`tickwave.money`), so the hand-checked figures hold to the last digit and the
order of the rows never changes a sum.

- A **trade** is a run of bars with the same non-zero position; its P&L is the sum of
  its bars' P&L less its entry and exit half-spreads. **Hit rate** = share of trades
  with P&L > 0.
- **Turnover** = position units traded per bar (a flip long to short counts 2, the
  close at the end counts).
- **Sharpe** = mean / standard deviation of the per-bar portfolio P&L (all symbols
  summed per bar start), times the square root of the bars in a 252-day year.
- **Max drawdown** = largest fall of the cumulative P&L from its running peak.

This vectorised backtest gives the training report's figures and is the cross-check of
the promotion's P&L, which runs through the live execution engine
(:mod:`models.engine_backtest`). Positions may also be lots (the engine's own position
path): a resize costs ``|change| x spread / 2``, as a flip of -1/0/+1 does.

The account currency is USD, as in the execution process: USD-quoted symbols need no
conversion, USD-based ones (USDJPY) divide by the mid (28 significant digits), crosses
are taken as USD-quoted (an approximation).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd

from models.dataset import DOWN, LABELS, UP
from tickwave.config import Settings, default_symbols
from tickwave.instruments import CONVERSION_CONTEXT, Instrument, convert, registry
from tickwave.modeling import SignalRules
from tickwave.money import MONEY_CONTEXT, exact_sum, quantize, to_decimal

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


def binary_auc(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Return the area under the ROC curve: the chance a positive outscores a negative (ties count half).

    Computed from average ranks (Mann-Whitney U), so scikit-learn stays out of the import path.
    """
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    average_rank = upper - (counts - 1) / 2.0  # 1-based rank, averaged over ties
    ranks = average_rank[inverse]
    positives = int(is_positive.sum())
    negatives = len(scores) - positives
    return float((ranks[is_positive].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


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
        binary_auc(onehot[:, index] == 1, probabilities[:, index])
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


def pip_size(symbol: str, digits: Mapping[str, int]) -> float:
    """Return the pip of ``symbol`` from its quoted digits (symbol registry), else by the FX convention.

    A 5- or 3-digit quote has a pip of ten ticks (EURUSD 0.0001, USDJPY 0.01); other
    quotes count pips in their last digit (XAUUSD with 2 digits: 0.01). A symbol outside
    the registry: 0.01 when JPY-quoted, else 0.0001.
    """
    if symbol in digits:
        places = digits[symbol]
        return float(10.0 ** -(places - 1) if places in (3, 5) else 10.0**-places)
    return 0.01 if symbol.upper().endswith("JPY") else 0.0001


def timeframe_seconds(timeframe: str) -> int:
    """Return the length of a timeframe such as ``1s``, ``5m``, ``1h``, ``1d`` in seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    return int(timeframe[:-1]) * units[timeframe[-1]]


@dataclass(frozen=True)
class BacktestSettings:
    """Size, instruments (contract size, quote currency) and pip sizes of the trading evaluation."""

    lots: float = 1.0
    digits: Mapping[str, int] = field(default_factory=dict)  # quoted digits per symbol (the symbol registry)
    bars_per_year: float = TRADING_DAYS_PER_YEAR * 86_400 / 60
    instruments: Mapping[str, Instrument] = field(default_factory=lambda: registry(default_symbols()))
    account_currency: str = "USD"

    @classmethod
    def from_settings(cls, settings: Settings) -> BacktestSettings:
        """Size from ``models.backtest_lots``, instruments and pips from ``symbols``, currency from ``execution``."""
        return cls(
            lots=settings.models.backtest_lots,
            instruments=registry(settings.symbols),
            account_currency=settings.execution.account_currency,
            digits={name: spec.digits for name, spec in settings.symbols.items()},
            bars_per_year=TRADING_DAYS_PER_YEAR * 86_400 / timeframe_seconds(settings.models.timeframe),
        )


@dataclass(frozen=True)
class TradingResult:
    """The backtest of one set of signals."""

    bars: int
    trades: int
    hit_rate: float | None
    pnl_pips: Decimal
    pnl_account: Decimal
    sharpe: float
    max_drawdown_pips: Decimal
    max_drawdown_account: Decimal
    turnover: float
    curve: pd.DataFrame  # per bar start: pnl_account, equity_account, drawdown_account, equity_pips

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """Return the figures as ``{prefix + name: value}`` (money rounded to cents)."""
        figures = {
            "bars": float(self.bars),
            "trades": float(self.trades),
            "pnl_pips": float(self.pnl_pips),
            "pnl_account": float(quantize(self.pnl_account)),
            "sharpe": self.sharpe,
            "max_drawdown_pips": float(self.max_drawdown_pips),
            "max_drawdown_account": float(quantize(self.max_drawdown_account)),
            "turnover": self.turnover,
        }
        if self.hit_rate is not None:
            figures["hit_rate"] = self.hit_rate
        return {f"{prefix}{name}": value for name, value in figures.items()}


@dataclass(frozen=True)
class _Ledger:
    pnl_price: list[Decimal]  # per bar, net, in price units
    trade_pnls: list[Decimal]  # per trade, net, in price units
    traded_units: Decimal


def _ledger(
    positions: np.ndarray, mid: Sequence[float], next_mid: Sequence[float], half_spread: list[Decimal]
) -> _Ledger:
    # One symbol in time order, exactly: each price through its shortest repr, every sum in decimal.
    count = len(positions)
    pnl: list[Decimal] = []
    trade_pnls: list[Decimal] = []
    open_trade: Decimal | None = None
    previous = Decimal(0)
    traded = Decimal(0)
    for index in range(count):
        current = to_decimal(float(positions[index]))  # -1/0/+1, or lots (the engine's path, for the cross-check)
        cost = Decimal(0)
        if current != previous:
            step = MONEY_CONTEXT.abs(MONEY_CONTEXT.subtract(current, previous))
            traded = MONEY_CONTEXT.add(traded, step)
            cost = MONEY_CONTEXT.multiply(step, half_spread[index])
            if open_trade is not None and current and (previous > 0) == (current > 0):
                open_trade = MONEY_CONTEXT.subtract(open_trade, cost)  # resized (lots): the same trade goes on
            else:  # closed, opened or flipped: |previous| + |current| = |current - previous|
                exit_cost = MONEY_CONTEXT.multiply(abs(previous), half_spread[index])
                if open_trade is not None:
                    trade_pnls.append(MONEY_CONTEXT.subtract(open_trade, exit_cost))
                open_trade = MONEY_CONTEXT.minus(MONEY_CONTEXT.subtract(cost, exit_cost)) if current else None
        move = MONEY_CONTEXT.subtract(to_decimal(next_mid[index]), to_decimal(mid[index]))
        gross = MONEY_CONTEXT.multiply(current, move)
        if open_trade is not None:
            open_trade = MONEY_CONTEXT.add(open_trade, gross)
        pnl.append(MONEY_CONTEXT.subtract(gross, cost))
        previous = current
    if open_trade is not None:  # still open at the end: close at half the last spread
        final_exit = MONEY_CONTEXT.multiply(abs(previous), half_spread[-1])
        trade_pnls.append(MONEY_CONTEXT.subtract(open_trade, final_exit))
        pnl[-1] = MONEY_CONTEXT.subtract(pnl[-1], final_exit)
        traded = MONEY_CONTEXT.add(traded, MONEY_CONTEXT.abs(previous))
    return _Ledger(pnl, trade_pnls, traded)


def _to_account(amount: Decimal, spec: Instrument, settings: BacktestSettings, mids: Mapping[str, float]) -> Decimal:
    # The instrument's quote currency to the account's at the bar's mids (direct, inverse or via USD).
    converted = convert(amount, spec.quote, settings.account_currency, settings.instruments, mids)
    if converted is None:
        raise ValueError(
            f"no rate to convert {spec.symbol}'s {spec.quote} P&L to {settings.account_currency}: train on a "
            f"symbol set that quotes it (e.g. USD{spec.quote} or {spec.quote}USD) or choose another account currency"
        )
    return converted


def _max_drawdown(pnl: Sequence[Decimal]) -> tuple[Decimal, list[Decimal], list[Decimal]]:
    # Largest fall below the running peak (the curve starts at 0 before the first bar); also the curves.
    equity, peak, worst = Decimal(0), Decimal(0), Decimal(0)
    equities, drawdowns = [], []
    for amount in pnl:
        equity = MONEY_CONTEXT.add(equity, amount)
        peak = max(peak, equity)
        drawdown = MONEY_CONTEXT.subtract(peak, equity)
        worst = max(worst, drawdown)
        equities.append(equity)
        drawdowns.append(drawdown)
    return worst, equities, drawdowns


def _half_spreads(frame: pd.DataFrame) -> list[Decimal]:
    # .tolist() gives Python floats: to_decimal reads a float's shortest repr.
    asks, bids = frame["ask_close"].to_numpy(np.float64).tolist(), frame["bid_close"].to_numpy(np.float64).tolist()
    return [
        MONEY_CONTEXT.divide(MONEY_CONTEXT.subtract(to_decimal(ask), to_decimal(bid)), 2)
        for ask, bid in zip(asks, bids, strict=True)
    ]


def backtest(frame: pd.DataFrame, positions: np.ndarray, settings: BacktestSettings) -> TradingResult:
    """Trade ``positions`` (-1/0/+1 per row) over the rows of ``frame``, symbol by symbol in time order.

    ``frame`` needs ``symbol``, ``bar_start_ms``, ``mid_close``, ``next_mid_close``,
    ``bid_close`` and ``ask_close``; rows need not be grouped by symbol. Amounts are
    exact decimals; only a USD-based symbol's conversion divides (28 significant digits).
    """
    rates: dict[int, dict[str, float]] = {}
    for symbol, start, mid in frame[["symbol", "bar_start_ms", "next_mid_close"]].itertuples(index=False):
        rates.setdefault(int(start), {})[str(symbol)] = float(mid)
    by_bar_account: dict[int, Decimal] = {}
    by_bar_pips: dict[int, Decimal] = {}
    trades: list[Decimal] = []
    traded_units = Decimal(0)
    for symbol, rows in frame.assign(position=positions).groupby("symbol", sort=True):
        rows = rows.sort_values("bar_start_ms", kind="stable")
        next_mid = rows["next_mid_close"].to_numpy(np.float64).tolist()
        ledger = _ledger(
            rows["position"].to_numpy(), rows["mid_close"].to_numpy(np.float64).tolist(), next_mid, _half_spreads(rows)
        )
        pip = to_decimal(pip_size(str(symbol), settings.digits))
        spec = settings.instruments.get(str(symbol))
        if spec is None:
            raise ValueError(f"no instrument spec for {symbol}: add it to the [symbols] table")
        units = MONEY_CONTEXT.multiply(to_decimal(settings.lots), to_decimal(spec.contract_size))
        for start, price_pnl in zip(rows["bar_start_ms"].to_numpy(np.int64), ledger.pnl_price, strict=True):
            key = int(start)
            money = _to_account(MONEY_CONTEXT.multiply(price_pnl, units), spec, settings, rates[key])
            by_bar_account[key] = MONEY_CONTEXT.add(by_bar_account.get(key, Decimal(0)), money)
            pips = CONVERSION_CONTEXT.divide(price_pnl, pip)
            by_bar_pips[key] = MONEY_CONTEXT.add(by_bar_pips.get(key, Decimal(0)), pips)
        trades.extend(ledger.trade_pnls)
        traded_units += ledger.traded_units
    starts = sorted(by_bar_account)
    account = [by_bar_account[start] for start in starts]
    pip_pnl = [by_bar_pips[start] for start in starts]
    drawdown_account, equity_account, drawdowns = _max_drawdown(account)
    drawdown_pips, equity_pips, _ = _max_drawdown(pip_pnl)
    per_bar = np.array([float(amount) for amount in account])
    deviation = float(np.std(per_bar, ddof=1)) if len(per_bar) > 1 else 0.0
    curve = pd.DataFrame(
        {
            "bar_start_ms": np.array(starts, dtype=np.int64),
            "pnl_account": per_bar,
            "equity_account": [float(value) for value in equity_account],
            "drawdown_account": [float(value) for value in drawdowns],
            "equity_pips": [float(value) for value in equity_pips],
        }
    )
    return TradingResult(
        bars=len(frame),
        trades=len(trades),
        hit_rate=sum(1 for pnl in trades if pnl > 0) / len(trades) if trades else None,
        pnl_pips=exact_sum(pip_pnl),
        pnl_account=exact_sum(account),
        sharpe=float(per_bar.mean() / deviation * math.sqrt(settings.bars_per_year)) if deviation > 0 else 0.0,
        max_drawdown_pips=drawdown_pips,
        max_drawdown_account=drawdown_account,
        turnover=float(traded_units) / len(frame) if len(frame) else 0.0,
        curve=curve,
    )


# ---------------------------------------------------------------------------------------
# Baselines: what a candidate must beat on the holdout, after costs
# ---------------------------------------------------------------------------------------

BASELINES = ("flat", "last_direction")


def baseline_positions(frame: pd.DataFrame, baseline: str) -> np.ndarray:
    """Return the positions of a simple strategy over ``frame``'s rows (-1/0/+1 per row).

    ``flat`` never trades (P&L 0 after costs). ``last_direction`` holds the direction of
    the bar that just closed (its close against the close before; 0 without one, or on
    no move): momentum with no model at all. It pays the same half spreads as the model.

    Raises:
        ValueError: for an unknown baseline.
    """
    if baseline == "flat":
        return np.zeros(len(frame), dtype=np.int8)
    if baseline == "last_direction":
        move = frame["mid_close"].to_numpy(np.float64) - frame["previous_mid_close"].to_numpy(np.float64)
        positions: np.ndarray = np.sign(np.nan_to_num(move, nan=0.0)).astype(np.int8)
        return positions
    raise ValueError(f"unknown baseline {baseline!r}: one of {', '.join(BASELINES)}")


@dataclass(frozen=True)
class BaselineComparison:
    """The candidate's holdout P&L after costs and trade count beside each baseline's P&L.

    From the engine backtest (:mod:`models.engine_backtest`) in promotion, with the
    vectorised P&L of the same signals beside it as a cross-check; from the vectorised
    backtest alone in :func:`compare_with_baselines`.
    """

    candidate_pnl_account: float
    candidate_trades: int
    baseline_pnl_account: dict[str, float]
    vectorised_pnl_account: float | None = None  # the cross-check, when the figures come from the engine
    notes: tuple[str, ...] = ()  # how each run went (orders, trades, denials per check)
    orders: dict[str, int] | None = None  # the engine's orders of each run ("candidate" and each baseline)

    @property
    def is_judgement(self) -> bool:
        """False when the candidate and every baseline placed no order: there is nothing to compare."""
        return self.orders is None or any(self.orders.values())

    def figures(self) -> dict[str, float]:
        """Return every value under the name the registry records it."""
        cross_check: dict[str, float] = {}
        if self.vectorised_pnl_account is not None:
            cross_check["vectorised_pnl_account"] = self.vectorised_pnl_account
        return {
            "candidate_pnl_account": self.candidate_pnl_account,
            "candidate_trades": float(self.candidate_trades),
            **{f"baseline_{name}_pnl_account": pnl for name, pnl in self.baseline_pnl_account.items()},
            **cross_check,
        }


def compare_with_baselines(
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    rules: SignalRules,
    settings: BacktestSettings,
    baselines: Sequence[str] = BASELINES,
) -> BaselineComparison:
    """Backtest the candidate's signals and each baseline on the same rows, with the same costs."""
    candidate = backtest(frame, signal_positions(probabilities, rules), settings)
    return BaselineComparison(
        candidate_pnl_account=float(quantize(candidate.pnl_account)),
        candidate_trades=candidate.trades,
        baseline_pnl_account={
            name: float(quantize(backtest(frame, baseline_positions(frame, name), settings).pnl_account))
            for name in baselines
        },
    )
