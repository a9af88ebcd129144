"""The holdout through the live execution engine (:mod:`execution.backtest`): the promotion's P&L.

The holdout frame (one row per symbol and bar close) becomes a recorded session:

- a **signal** per row, by the streams' own rule (:func:`streams.signals.signal_from`:
  direction, strength ``|p(up) - p(down)|``, flat too), on the dataset's timeframe,
  created at the bar's end (``bar_start_ms`` + the timeframe), as the dataflow emits it;
- a **tick** per row just before it (the bar's end - 1 ms) at the close's bid and ask;
- after each symbol's last row, a tick at ``next_mid_close`` with the last row's spread
  and a ``flat`` signal (``holdout-end``): the position is closed the way the vectorised
  backtest closes it (at half the last spread), through the gate and the broker.

The session is replayed by :func:`execution.backtest.replay_session` with the live
``execution`` settings: the engine's sizing (strength x ``max_position_lots``, orders
capped at ``max_order_lots``), the risk gate (market hours, collar, daily loss, ...), the
paper broker's slippage and latency. So the P&L is what live trading would have made;
its orders are the ones it would have sent. One setting is the model's own: every symbol
is driven by the model's timeframe (``execution.risk.signal_timeframe(s)`` replaced, see
:func:`driven_by`). A model is judged on its own signals, as it would trade once it drives
the symbol; live execution configured with another driver would deny each of them as
``signal_timeframe`` and leave a judgement of zeros, so the notes say where the live
configuration differs instead.

The vectorised backtest (:func:`models.evaluation.backtest`) stays as the cross-check: it
holds +-``backtest_lots`` per signal at the mid with half-spread costs, no sizing, no
gate, no slippage. Given the engine's own position path
(:func:`engine_positions`) and no slippage, it gives the same P&L to the cent on
account-currency-quoted symbols (``tests/unit/models/test_engine_backtest.py``); the
remaining differences are exactly the sizing, the gate's denials, the slippage, and for
other quote currencies the conversion (the engine converts each currency's sum once, at
the last mids; the vectorised one bar by bar).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from execution.backtest import ReplayResult, replay_session
from models.dataset import LABELS
from models.evaluation import timeframe_seconds
from streams.signals import signal_from
from tickwave.config import Settings
from tickwave.contracts import Direction, OrderFilled, OrderSubmitted, Prediction, Signal, Tick
from tickwave.modeling import SignalRules
from tickwave.money import MONEY_CONTEXT, quantize, to_decimal
from tickwave.validation import QuoteBatch

HOLDOUT_END = "holdout-end"
_SOURCE = "holdout"  # the holdout's ticks' source
_DIRECTIONS: dict[int, Direction] = {1: "long", -1: "short", 0: "flat"}


def _end_signal(symbol: str, timeframe: str, at_ms: int, model_id: str, model_version: int) -> Signal:
    return Signal(
        signal_id=Signal.make_id(f"{model_id}:{HOLDOUT_END}", model_version, symbol, timeframe, at_ms),
        symbol=symbol,
        timeframe=timeframe,
        bar_start_ms=at_ms,
        direction="flat",
        strength=0.0,
        confidence=1.0,
        model_id=model_id,
        model_version=model_version,
        created_at_ms=at_ms,
    )


def holdout_ticks(frame: pd.DataFrame, timeframe: str) -> QuoteBatch:
    """Return one tick per row at its bar's end - 1 ms (close bid/ask), and one after each symbol's last row.

    The last one quotes ``next_mid_close`` with the last row's spread, each side computed
    exactly (decimal) and rounded once to the nearest float. The ticks are the frame's columns
    (a :class:`~tickwave.validation.QuoteBatch`: no Python tick per row unless one is read).
    """
    frame_ms = timeframe_seconds(timeframe) * 1000
    symbols: list[str] = []
    codes, times, bids, asks = [], [], [], []
    for code, (symbol, rows) in enumerate(frame.groupby("symbol", sort=True)):
        rows = rows.sort_values("bar_start_ms", kind="stable")
        starts = rows["bar_start_ms"].to_numpy(np.int64)
        bid, ask = rows["bid_close"].to_numpy(np.float64), rows["ask_close"].to_numpy(np.float64)
        half = MONEY_CONTEXT.divide(MONEY_CONTEXT.subtract(to_decimal(float(ask[-1])), to_decimal(float(bid[-1]))), 2)
        mid = to_decimal(float(rows["next_mid_close"].to_numpy(np.float64)[-1]))
        symbols.append(str(symbol))
        codes.append(np.full(len(starts) + 1, code, dtype=np.int32))
        times.append(np.append(starts + frame_ms - 1, starts[-1] + 2 * frame_ms - 1))
        bids.append(np.append(bid, float(mid - half)))
        asks.append(np.append(ask, float(mid + half)))
    if not symbols:
        return QuoteBatch((), np.zeros(0, np.int32), np.zeros(0, np.int64), np.zeros(0), np.zeros(0), _SOURCE)
    return QuoteBatch(
        tuple(symbols),
        np.concatenate(codes),
        np.concatenate(times),
        np.concatenate(bids),
        np.concatenate(asks),
        _SOURCE,
    )


def holdout_signals(
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    rules: SignalRules,
    timeframe: str,
    model_id: str,
    model_version: int,
) -> list[Signal]:
    """Return the signal of each row (the streams' rule) at its bar's end, and each symbol's ``holdout-end`` flat."""
    frame_ms = timeframe_seconds(timeframe) * 1000
    symbols = frame["symbol"].astype(str).tolist()
    starts = frame["bar_start_ms"].to_numpy(np.int64).tolist()
    signals = []
    for symbol, start, row in zip(symbols, starts, probabilities.astype(np.float64).tolist(), strict=True):
        prediction = Prediction(
            symbol=symbol,
            timeframe=timeframe,
            bar_start_ms=start,
            model_id=model_id,
            model_version=model_version,
            probabilities=dict(zip(LABELS, row, strict=True)),
            inference_latency_us=0.0,
            predicted_at_ms=start,
        )
        signals.append(signal_from(prediction, rules, start + frame_ms))
    return signals + _end_signals(frame, timeframe, model_id, model_version)


def position_signals(
    frame: pd.DataFrame, positions: np.ndarray, timeframe: str, model_id: str, model_version: int = 0
) -> list[Signal]:
    """Return full-strength signals for -1/0/+1 positions (a baseline's), and each symbol's ``holdout-end`` flat."""
    frame_ms = timeframe_seconds(timeframe) * 1000
    signals = []
    for symbol, start, sign in zip(
        frame["symbol"].astype(str).tolist(),
        frame["bar_start_ms"].to_numpy(np.int64).tolist(),
        np.sign(np.asarray(positions).astype(int)).tolist(),
        strict=True,
    ):
        direction = _DIRECTIONS[sign]
        signals.append(
            Signal(
                signal_id=Signal.make_id(model_id, model_version, symbol, timeframe, start),
                symbol=symbol,
                timeframe=timeframe,
                bar_start_ms=start,
                direction=direction,
                strength=1.0 if sign else 0.0,
                confidence=1.0,
                model_id=model_id,
                model_version=model_version,
                created_at_ms=start + frame_ms,
            )
        )
    return signals + _end_signals(frame, timeframe, model_id, model_version)


def _end_signals(frame: pd.DataFrame, timeframe: str, model_id: str, model_version: int) -> list[Signal]:
    # After each symbol's last row: its closing tick is at last start + 2 frames - 1 ms; the flat comes 1 ms later.
    frame_ms = timeframe_seconds(timeframe) * 1000
    last = frame.groupby("symbol", sort=True)["bar_start_ms"].max()
    return [
        _end_signal(str(symbol), timeframe, int(start) + 2 * frame_ms, model_id, model_version)
        for symbol, start in last.items()
    ]


@dataclass(frozen=True)
class EngineTrading:
    """The engine backtest of one set of signals over the holdout."""

    replay: ReplayResult
    pnl_account: Decimal | None  # realised + open at the last mids, account currency (None: a rate is missing)
    trades: int
    orders: int
    denials: dict[str, int]

    def summary(self, name: str) -> str:
        """One line for the promotion's notes: P&L, orders, trades, whether the audit chain was linked, denials."""
        pnl = "unknown (a rate is missing)" if self.pnl_account is None else f"{quantize(self.pnl_account)}"
        denied = ", ".join(f"{check} {count}" for check, count in self.denials.items()) or "none"
        chain = " (audit chain not linked)" if self.replay.chain_head is None else ""
        return (
            f"engine backtest of {name}: P&L {pnl} {self.replay.account_currency}, {self.orders} orders, "
            f"{self.trades} trades{chain}; denied: {denied}"
        )


def run_engine(
    settings: Settings,
    ticks: Sequence[Tick],
    signals: Sequence[Signal],
    *,
    fast: bool = True,
    audit_chain: bool = True,
) -> EngineTrading:
    """Replay ``ticks`` and ``signals`` through the execution engine with the live settings.

    ``fast``: the replay with its journal and paper ledger in memory (the same decisions;
    see :func:`execution.backtest.replay_session`); False replays through the live files.
    ``audit_chain``: with ``fast``, link the order events into the audit chain at the end;
    False leaves it out (a P&L judgement reads no chain) and :meth:`EngineTrading.summary` says so.
    """
    replay = replay_session(settings, ticks, signals, fast=fast, audit_chain=audit_chain)
    return EngineTrading(replay, replay.total_pnl, replay.trades, replay.order_count, replay.denial_counts())


def engine_positions(
    frame: pd.DataFrame, replay: ReplayResult, timeframe: str, model_id: str, model_version: int
) -> np.ndarray:
    """Return each row's position (lots) once its signal was acted on: the engine's path, for the cross-check."""
    after: dict[str, Decimal] = {}
    positions: dict[str, Decimal] = {}
    orders: dict[str, OrderSubmitted] = {}
    for event in replay.events:
        if isinstance(event, Signal):
            after[event.signal_id] = positions.get(event.symbol, Decimal(0))
        elif isinstance(event, OrderSubmitted):
            orders[event.client_order_id] = event
        elif isinstance(event, OrderFilled):
            order, lots = orders[event.client_order_id], to_decimal(event.fill_lots)
            signed = lots if order.side == "buy" else MONEY_CONTEXT.minus(lots)
            positions[event.symbol] = MONEY_CONTEXT.add(positions.get(event.symbol, Decimal(0)), signed)
            after[order.signal_id] = positions[event.symbol]
    ids = [
        Signal.make_id(model_id, model_version, str(symbol), timeframe, int(start))
        for symbol, start in frame[["symbol", "bar_start_ms"]].itertuples(index=False)
    ]
    return np.array([float(after.get(signal_id, Decimal(0))) for signal_id in ids])


def driven_by(settings: Settings, timeframe: str) -> Settings:
    """Return ``settings`` with every symbol's position driven by ``timeframe`` signals (the model's own)."""
    risk = settings.execution.risk.model_copy(update={"signal_timeframe": timeframe, "signal_timeframes": {}})
    execution = settings.execution.model_copy(update={"risk": risk})
    return settings.model_copy(update={"execution": execution})


def live_driver_note(settings: Settings, symbols: Sequence[str], timeframe: str) -> str | None:
    """Say which symbols live execution drives from another timeframe than the model's (None: none)."""
    risk = settings.execution.risk
    others = {symbol: risk.signal_timeframes.get(symbol, risk.signal_timeframe) for symbol in symbols}
    others = {symbol: driver for symbol, driver in others.items() if driver != timeframe}
    if not others:
        return None
    listed = ", ".join(f"{symbol} by {driver}" for symbol, driver in sorted(others.items()))
    return (
        f"judged on its own {timeframe} signals (models.timeframe); live execution drives {listed} "
        f"(execution.risk.signal_timeframe / signal_timeframes): there its signals are denied until "
        f"execution.risk.signal_timeframe names {timeframe}"
    )
