"""The promotion's P&L judged walk-forward: every fold's test window through the live execution engine.

A candidate is judged on several windows of time, not on one holdout, so that neither one
lucky stretch nor one unlucky one decides:

- each **walk-forward fold's test block**, scored out of sample by the model fitted on the
  rows before it (the fold models exist only in the training run, so these folds are
  replayed at training and their figures recorded with the version, ``fold_<n>_*``);
- the **holdout**, scored by the candidate itself (the served model), replayed when it is
  judged for promotion.

In each window the candidate's signals and each baseline's positions replay through the
execution engine (:mod:`models.engine_backtest`'s public functions: the live sizing, gate
and paper costs) as a session of their own that starts flat and ends flat. Per strategy and
window: the P&L (exact ``Decimal``, account currency, realised plus open at the last mids,
what the engine reports), the trades, the hit rate (the share of the fills that closed
part of a position with a realised gain) and the max drawdown (the largest fall of the
realised equity after each closing fill, and of the final P&L, below its running peak;
every currency converted at the window's last mids, as the engine values its account).
A strategy that never holds a position sends no order: its figures are zeros without a
replay (the ``flat`` baseline).

A window of at least ``models.judgement_parallel_rows`` rows replays its baselines in worker
processes (spawned, as the benchmarks' are) while this process replays the candidate: each
replay is the same single-threaded code on its own core, so the figures are the ones the
sequential judgement gives (``tests/unit/models/test_fold_judgement.py`` holds them equal).
A worker is sent the window's columns and the baseline's positions, not a built session:
pickling a 200,000-row window's ticks and signals took ~0.9 s, its columns ~0.02 s.

The rule applied to these figures is :func:`models.promotion.fold_share_failures`.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from execution.backtest import collector_paused, fill_moves, instruments_of, realized_of
from models.dataset import Dataset
from models.engine_backtest import (
    EngineTrading,
    driven_by,
    holdout_signals,
    holdout_ticks,
    live_driver_note,
    position_signals,
    run_engine,
)
from models.evaluation import (
    BacktestSettings,
    BaselineComparison,
    TradingResult,
    backtest,
    baseline_positions,
    signal_positions,
)
from models.fold_figures import HOLDOUT, NO_POSITION, FoldJudgement, StrategyFigures
from models.results import TrainingResult
from tickwave.config import Settings
from tickwave.contracts import Signal, Tick
from tickwave.instruments import Instrument, conversion_route, convert_along
from tickwave.modeling import SignalRules
from tickwave.money import MONEY_CONTEXT, quantize

T = TypeVar("T")


def strategy_figures(
    trading: EngineTrading, instruments: Mapping[str, Instrument], account_currency: str, mids: Mapping[str, float]
) -> StrategyFigures:
    """Return one replay's figures: its P&L, trades and orders, the hit rate and max drawdown of its closing fills.

    Raises:
        ValueError: when the P&L cannot be valued in the account currency (a conversion rate is missing).
    """
    if trading.pnl_account is None:
        raise ValueError(f"the engine backtest cannot value its P&L in {account_currency}: a rate is missing")
    positions: dict[str, Decimal] = {}
    routes: dict[str, tuple[tuple[float, bool], ...] | None] = {}  # each currency's at the window's last mids
    equity, peak, worst = Decimal(0), Decimal(0), Decimal(0)
    closing = gains = 0
    # Each fill's move (fill_pnls' figures): the money of the closing fills alone.
    for _order, _fill, symbol, side, lots, _price, moved, _opens in fill_moves(trading.replay.events):
        held = positions.get(symbol, Decimal(0))
        signed = lots if side == "buy" else MONEY_CONTEXT.minus(lots)
        positions[symbol] = MONEY_CONTEXT.add(held, signed)
        if not held or (held > 0) == (signed > 0):
            continue  # opened or added to a position: nothing realised
        spec = instruments[symbol]
        realized = realized_of(spec, moved)
        closing += 1
        gains += realized > 0
        if spec.quote not in routes:
            routes[spec.quote] = conversion_route(spec.quote, account_currency, instruments, mids)
        route = routes[spec.quote]
        if route is None:
            raise ValueError(f"no rate to convert {symbol}'s {spec.quote} P&L to {account_currency}")
        equity = MONEY_CONTEXT.add(equity, convert_along(realized, route))
        peak = max(peak, equity)
        worst = max(worst, MONEY_CONTEXT.subtract(peak, equity))
    worst = max(worst, MONEY_CONTEXT.subtract(peak, trading.pnl_account))  # what stayed open at the end
    return StrategyFigures(
        trading.pnl_account, trading.trades, trading.orders, gains / closing if closing else None, worst
    )


def _last_mids(frame: pd.DataFrame) -> dict[str, float]:
    # Each symbol's mid after its last row: the closing tick the engine values the account at.
    last = frame.sort_values("bar_start_ms", kind="stable").groupby("symbol", sort=True)["next_mid_close"].last()
    return {str(symbol): float(mid) for symbol, mid in last.items()}


@dataclass(frozen=True)
class WindowJudgement:
    """One window judged on the engine, and the candidate's vectorised P&L of the same signals (the cross-check)."""

    fold: FoldJudgement
    comparison: BaselineComparison  # the figures the holdout judgement has always recorded


# The columns a window's session is built from (holdout_ticks, holdout_signals, position_signals).
_SESSION_COLUMNS = ["symbol", "bar_start_ms", "bid_close", "ask_close", "next_mid_close"]


@dataclass(frozen=True)
class _Replay:
    """One strategy's replay of a window: what a worker process is sent, and what it sends back (``run``)."""

    key: str
    settings: Settings  # driven by the window's timeframe
    frame: pd.DataFrame  # the session's columns
    timeframe: str
    mids: dict[str, float]
    signals_of: tuple[np.ndarray, SignalRules] | np.ndarray  # the candidate's probabilities and rules; positions
    model_id: str
    model_version: int = 0

    def signals(self) -> list[Signal]:
        """Return the strategy's signals over the window (the candidate's by the rules, a baseline's positions)."""
        if isinstance(self.signals_of, tuple):
            probabilities, rules = self.signals_of
            return holdout_signals(self.frame, probabilities, rules, self.timeframe, self.model_id, self.model_version)
        return position_signals(self.frame, self.signals_of, self.timeframe, self.model_id, self.model_version)

    def run(self, ticks: Sequence[Tick] | None = None) -> tuple[StrategyFigures, str]:
        """Replay the strategy on the engine; return its figures and its line of the notes.

        The collector paused throughout, as in the replay: the signals, the journal's figures and
        what they are read into stay alive to the end (its passes took ~0.9 s of a 200,000-row window).
        """
        with collector_paused():
            ticks = holdout_ticks(self.frame, self.timeframe) if ticks is None else ticks
            # A P&L judgement reads no audit chain: it is not linked (each run's note says so).
            trading = run_engine(self.settings, ticks, self.signals(), audit_chain=False)
            instruments, currency = instruments_of(self.settings), self.settings.execution.account_currency
            return strategy_figures(trading, instruments, currency, self.mids), trading.summary(self.key)


def _run(replay: _Replay) -> tuple[StrategyFigures, str]:
    return replay.run()


@contextmanager
def judgement_pool(settings: Settings, rows: int, replays: int) -> Iterator[Executor | None]:
    """Yield worker processes for the replays after the first (None: one after another, in this process).

    Workers when the window has ``models.judgement_parallel_rows`` rows or more, there is more
    than one replay and more than one CPU: at most one per replay beyond the first and one per CPU
    beyond this process's. Spawned: a fork of a process with threads (the training job's) may hang.
    """
    workers = min(replays - 1, (os.cpu_count() or 1) - 1)
    if rows < settings.models.judgement_parallel_rows or workers < 1:
        yield None
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield pool


def judge_window(
    name: str,
    frame: pd.DataFrame,
    probabilities: np.ndarray,
    rules: SignalRules,
    settings: Settings,
    timeframe: str,
    baselines: Sequence[str],
    model_id: str = "candidate",
    model_version: int = 0,
    pool: Executor | None = None,
) -> WindowJudgement:
    """Replay one window's candidate signals and each baseline through the engine; return its figures.

    ``pool``: where the baselines are replayed while this process replays the candidate (see
    :func:`judgement_pool`; the same figures); None: the pool the window's size calls for.

    Raises:
        ValueError: when an account-currency P&L cannot be valued (a conversion rate is missing).
    """
    judged = driven_by(settings, timeframe)
    mids = _last_mids(frame)
    session = frame[_SESSION_COLUMNS]
    replays = [_Replay("candidate", judged, session, timeframe, mids, (probabilities, rules), model_id, model_version)]
    not_replayed: list[str] = []
    for baseline in baselines:
        positions = baseline_positions(frame, baseline)
        if positions.any():
            replays.append(_Replay(baseline, judged, session, timeframe, mids, positions, f"baseline:{baseline}"))
        else:
            not_replayed.append(baseline)

    def vectorised() -> TradingResult:  # the cross-check, while a worker may still be replaying
        return backtest(frame, signal_positions(probabilities, rules), BacktestSettings.from_settings(settings))

    if pool is None:
        with judgement_pool(settings, len(frame), len(replays)) as own:
            runs, checked = _replayed(replays, own, vectorised)
    else:
        runs, checked = _replayed(replays, pool, vectorised)
    runs.update(
        {
            key: (NO_POSITION, f"engine backtest of {key}: never holds a position, no order (not replayed)")
            for key in not_replayed
        }
    )
    keys = ["candidate", *baselines]
    figures = {key: runs[key][0] for key in keys}
    notes = tuple(f"{'' if name == HOLDOUT else f'fold {name}: '}{runs[key][1]}" for key in keys)
    live_note = live_driver_note(settings, sorted(frame["symbol"].astype(str).unique()), timeframe)
    fold = FoldJudgement(
        name,
        len(frame),
        figures["candidate"],
        {key: figures[key] for key in baselines},
        notes + ((live_note,) if live_note and name == HOLDOUT else ()),
    )
    comparison = BaselineComparison(
        candidate_pnl_account=float(quantize(fold.candidate.pnl_account)),
        candidate_trades=fold.candidate.trades,
        baseline_pnl_account={key: float(quantize(value.pnl_account)) for key, value in fold.baselines.items()},
        vectorised_pnl_account=float(quantize(checked.pnl_account)),
        notes=fold.notes,
        orders={key: value.orders for key, value in figures.items()},
    )
    return WindowJudgement(fold, comparison)


def _replayed(
    replays: Sequence[_Replay], pool: Executor | None, meanwhile: Callable[[], T]
) -> tuple[dict[str, tuple[StrategyFigures, str]], T]:
    """Run the first replay here and the others in ``pool`` meanwhile (None: here, one after another).

    Then ``meanwhile`` here, before waiting for the pool; return the runs and its result.
    """
    first, *others = replays
    futures = [pool.submit(_run, replay) for replay in others] if pool is not None else []
    ticks = holdout_ticks(first.frame, first.timeframe)  # the same for every strategy of the window
    runs = {first.key: first.run(ticks)}
    if pool is None:
        runs.update({replay.key: replay.run(ticks) for replay in others})
        return runs, meanwhile()
    done = meanwhile()
    runs.update({replay.key: future.result() for replay, future in zip(others, futures, strict=True)})
    return runs, done


def walk_forward_windows(result: TrainingResult[Any]) -> list[tuple[str, Dataset, np.ndarray]]:
    """Return each walk-forward fold's test rows and their out-of-sample probabilities, fold after fold."""
    dataset, probabilities = result.walk_forward_dataset, result.walk_forward_probabilities
    if dataset is None or probabilities is None:
        return []
    windows, start = [], 0
    for fold in result.folds:  # the out-of-sample rows are the folds' test blocks, in order
        rows = np.arange(start, start + fold.test_rows)
        windows.append((str(fold.index), dataset.take(rows), probabilities[rows]))
        start += fold.test_rows
    return windows


def judge_walk_forward(
    result: TrainingResult[Any], settings: Settings, model_id: str = "candidate", model_version: int = 0
) -> list[FoldJudgement]:
    """Replay every walk-forward fold's test block on the engine: the candidate's folds and the baselines'.

    Nothing to replay without baselines (``models.baselines`` empty: not judged on P&L).
    """
    models, streams = settings.models, settings.streams
    if not models.baselines:
        return []
    rules = SignalRules(streams.entry_probability, streams.min_edge)
    windows = walk_forward_windows(result)
    # One pool for every fold (its workers start once), when the largest fold calls for one.
    largest = max((len(window.frame) for _name, window, _probabilities in windows), default=0)
    with judgement_pool(settings, largest, 1 + len(models.baselines)) as pool:
        return [
            judge_window(
                name,
                window.frame,
                probabilities,
                rules,
                settings,
                window.timeframe,
                models.baselines,
                model_id,
                model_version,
                pool,
            ).fold
            for name, window, probabilities in windows
        ]
