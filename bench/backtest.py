"""Backtests: the engine backtest (the live execution service, replayed) against the vectorised one.

In one run, on the same synthetic holdout (1-minute bars of EURUSD, USDJPY and XAUUSD,
random walks, random probabilities from which about half the rows signal):

- the vectorised backtest (``models.evaluation.backtest``) of the candidate's signals;
- the engine backtest of the same signals (``models.engine_backtest.run_engine``: the
  execution service, risk gate, sizing, journal and paper broker under a replayed clock),
  twice: the fast replay (journal and paper ledger in memory, the audit chain linked once
  at the end) and the replay through the live process's files (the baseline);
- the promotion's whole P&L judgement of the holdout (``models.fold_judgement.judge_window``:
  the candidate and the baselines through the engine, the audit chain not linked; ``flat``
  never holds a position and is not replayed; plus the vectorised cross-check).

By default at 50,000 rows, at 200,000, the holdout of a 1M-row training run
(``holdout_fraction`` 0.2, the size ``bench/models.py`` trains on), then at 1,000,000
(without the live-path replay). Targets: the fast engine replay, audit chain linked, at
>= 2x the vectorised backtest's rate in the same run at 50,000 and 200,000 rows, and at
>= 25,000 rows/s at 200,000 rows; the promotion's P&L judgement of that holdout under
5 s. Rows per second are given per wall-clock second
and per CPU second of the process (the machine is shared: the CPU figure is the steadier one);
the judgement's CPU seconds include its worker's (the baselines' replays, see
``models.fold_judgement``).

Run: .venv/bin/python -m bench.backtest [--rows 50000 200000 1000000] [--skip-live-at 1000000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench.summary import record

if TYPE_CHECKING:
    from tickwave.config import Settings

SYMBOLS = {"EURUSD": (1.1, 0.0001), "USDJPY": (150.0, 0.01), "XAUUSD": (2000.0, 0.2)}
WEDNESDAY_MS = 1_700_049_600_000
T = TypeVar("T")
TARGET_S = 5.0  # the promotion's P&L judgement at TARGET_AT_ROWS rows
TARGET_ROWS_PER_S = 25_000
TARGET_AT_ROWS = 200_000
TARGET_RATIO = 2.0  # the fast replay's rate against the vectorised backtest's, in the same run
RATIO_AT_ROWS = (50_000, TARGET_AT_ROWS)


@dataclass(frozen=True)
class Timed:
    """One timed run: wall-clock and CPU seconds of this process and of the workers it waited for."""

    wall_s: float
    cpu_s: float

    def rates(self, rows: int) -> str:
        """Rows per wall second and per CPU second."""
        return f"{rows / self.wall_s:,.0f} rows/s ({rows / self.cpu_s:,.0f} per CPU s)"


def timed(work: Callable[[], T]) -> tuple[T, Timed]:
    """Run ``work``; return its result and how long it took."""
    wall, cpu = time.perf_counter(), cpu_s()
    result = work()
    return result, Timed(time.perf_counter() - wall, cpu_s() - cpu)


def cpu_s() -> float:
    """Return the CPU seconds of this process and of the child processes it has waited for (a judgement's workers)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def synthetic_holdout(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Consecutive 1-minute bars per symbol (random walks, fixed spreads) and random probabilities."""
    rng = np.random.default_rng(seed)
    per_symbol = rows // len(SYMBOLS)
    parts = []
    for symbol, (start, spread) in SYMBOLS.items():
        mid = np.round(start * np.exp(np.cumsum(rng.normal(0, 2e-4, per_symbol + 1))), 5)
        starts = WEDNESDAY_MS + np.arange(per_symbol, dtype=np.int64) * 60_000
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "bar_start_ms": starts,
                    "mid_close": mid[:-1],
                    "next_mid_close": mid[1:],
                    "previous_mid_close": np.concatenate([[np.nan], mid[:-2]]),
                    "bid_close": mid[:-1] - spread / 2,
                    "ask_close": mid[:-1] + spread / 2,
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    raw = rng.dirichlet([1.0, 1.0, 1.0], size=len(frame))
    return frame, raw


def main() -> None:
    """Time the backtests on the same holdout at each size; print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[*RATIO_AT_ROWS, 1_000_000])
    parser.add_argument(
        "--skip-live-at",
        type=int,
        default=1_000_000,
        help="from this many rows on, leave out the live-path replay (~4 min per 1M rows)",
    )
    parser.add_argument(
        "--floor",
        type=int,
        metavar="ROWS",
        help="time only what any replay of ROWS rows must build (bench/README.md, the floor), beside the replay",
    )
    arguments = parser.parse_args()
    if arguments.floor:
        print_floor(arguments.floor)
        return
    for rows in arguments.rows:
        bench_rows(rows, is_live=rows < arguments.skip_live_at)


def replay_settings(state_dir: Path) -> Settings:
    """The live defaults, except the market hours (the synthetic bars run through weekends) and the loss limit."""
    from tickwave.config import load_settings

    return load_settings(state_dir=state_dir, market={"hours": "always"}, execution={"risk": {"daily_loss_limit": 1e9}})


def print_floor(rows: int) -> None:
    """Print the CPU seconds of what the replay's journal and chain alone cost, beside the replay and the vectorised.

    The same holdout as :func:`bench_rows`: the ticks' decode and the timeline, every journaled event built
    again (its constructor's checks included), each signal's order id, and the audit chain (encode, hash).
    """
    import gc

    import msgspec

    from execution.core.replay import decoded, timeline
    from models.engine_backtest import holdout_signals, holdout_ticks, run_engine
    from models.evaluation import BacktestSettings, backtest, signal_positions
    from tickwave.audit_chain import CHAINED_TYPES, AuditChain
    from tickwave.contracts import Signal, client_order_id_for, encode
    from tickwave.modeling import SignalRules

    frame, probabilities = synthetic_holdout(rows)
    rows, rules = len(frame), SignalRules()  # a multiple of the symbols' count
    with tempfile.TemporaryDirectory() as state:
        settings = replay_settings(Path(state))
        positions = signal_positions(probabilities, rules)
        _, vectorised = timed(lambda: backtest(frame, positions, BacktestSettings.from_settings(settings)))
        ticks = holdout_ticks(frame, "1m")
        signals = holdout_signals(frame, probabilities, rules, "1m", "bench", 1)
        engine, replay = timed(lambda: run_engine(settings, ticks, signals))
    events = engine.replay.events
    chained = [event for event in events if type(event) in CHAINED_TYPES]
    gc.disable()  # as the replay runs
    try:
        parts = {
            "ticks decoded, timeline merged": timed(lambda: timeline(decoded(ticks)[0], signals))[1],
            f"{len(events) - len(signals):,} journaled events built": timed(
                lambda: [msgspec.structs.replace(event) for event in events if type(event) is not Signal]
            )[1],
            f"{len(signals):,} order ids": timed(lambda: [client_order_id_for(s.signal_id) for s in signals])[1],
            f"{len(chained):,} chained events encoded": timed(lambda: [encode(event) for event in chained])[1],
        }
        encoded = [encode(event) for event in chained]
        parts["and hashed"] = timed(lambda: AuditChain("floor").extend(encoded))[1]
    finally:
        gc.enable()
    floor = sum(part.cpu_s for part in parts.values())
    print(
        f"{rows:,} rows, CPU seconds: vectorised {vectorised.cpu_s:.2f}, fast replay {replay.cpu_s:.2f} "
        f"({vectorised.cpu_s / replay.cpu_s:.2f}x; {TARGET_RATIO}x is {vectorised.cpu_s / TARGET_RATIO:.2f} s)"
    )
    for what, took in parts.items():
        print(f"  {what}: {took.cpu_s:.2f}")
    print(f"  together {floor:.2f} ({floor / replay.cpu_s:.0%} of the replay); load {os.getloadavg()[0]:.1f}")


def bench_rows(rows: int, is_live: bool) -> None:
    """Time every backtest on one holdout of ``rows`` rows."""
    from models.engine_backtest import holdout_signals, holdout_ticks, run_engine
    from models.evaluation import BacktestSettings, backtest, signal_positions
    from models.fold_figures import HOLDOUT
    from models.fold_judgement import judge_window
    from tickwave.modeling import SignalRules

    console = Console()
    load_before = os.getloadavg()[0]
    frame, probabilities = synthetic_holdout(rows)
    is_target_size, is_ratio_target = rows == TARGET_AT_ROWS, rows in RATIO_AT_ROWS  # the sizes asked for
    rows = len(frame)  # a multiple of the symbols' count
    rules = SignalRules()
    with tempfile.TemporaryDirectory() as state:
        settings = replay_settings(Path(state))
        vectorised, vectorised_t = timed(
            lambda: backtest(frame, signal_positions(probabilities, rules), BacktestSettings.from_settings(settings))
        )
        (ticks, signals), session_t = timed(
            lambda: (holdout_ticks(frame, "1m"), holdout_signals(frame, probabilities, rules, "1m", "bench", 1))
        )
        engine, engine_t = timed(lambda: run_engine(settings, ticks, signals))
        unchained = unchained_t = None
        if is_target_size:  # the replay a promotion judges with: the same decisions, no audit chain linked
            unchained, unchained_t = timed(lambda: run_engine(settings, ticks, signals, audit_chain=False))
        live = live_t = None
        if is_live:
            live, live_t = timed(lambda: run_engine(settings, ticks, signals, fast=False))
        window, promotion_t = timed(
            lambda: judge_window(HOLDOUT, frame, probabilities, rules, settings, "1m", ("flat", "last_direction"))
        )
    load_after = os.getloadavg()[0]

    table = Table(title=f"backtests of {rows:,} holdout rows ({len(ticks):,} ticks, {len(signals):,} signals)")
    for column in ("what", "time", "rows per second", "per row", "P&L (USD)", "orders"):
        table.add_column(column)

    def add(what: str, took: Timed, pnl: object = "", orders: str = "") -> None:
        table.add_row(
            what,
            f"{took.wall_s:.2f} s",
            took.rates(rows),
            f"{took.wall_s / rows * 1e6:.1f} us",
            f"{pnl:.2f}" if pnl != "" else "",
            orders,
        )

    add("vectorised", vectorised_t, vectorised.pnl_account, "-")
    add("session built (ticks + signals)", session_t)
    add(
        "engine backtest, fast replay (in memory, chain at the end)", engine_t, engine.pnl_account, f"{engine.orders:,}"
    )
    if unchained is not None and unchained_t is not None:
        add(
            "engine backtest, fast replay, audit chain not linked (as a promotion judges)",
            unchained_t,
            unchained.pnl_account,
            f"{unchained.orders:,}",
        )
    if live is not None and live_t is not None:
        add("engine backtest, live path (journal and ledger files)", live_t, live.pnl_account, f"{live.orders:,}")
    add(
        "promotion P&L (candidate + 2 baselines on the engine, flat not replayed, no audit chain; vectorised "
        "cross-check)",
        promotion_t,
        window.comparison.candidate_pnl_account,
    )
    console.print(table)
    console.print(engine.summary("the candidate"))
    quiet = "" if max(load_before, load_after) <= 2 else " (not quiet)"
    fast_rate, fast_cpu_rate = rows / engine_t.wall_s, rows / engine_t.cpu_s
    if live is not None and live_t is not None:
        is_same = live.replay.events == engine.replay.events and live.pnl_account == engine.pnl_account
        console.print(
            f"fast / live path: {live_t.wall_s / engine_t.wall_s:.1f}x wall, "
            f"{live_t.cpu_s / engine_t.cpu_s:.1f}x CPU; same journal and P&L: {is_same}"
        )
    is_met = promotion_t.wall_s < TARGET_S
    console.print(
        f"fast replay at {vectorised_t.wall_s / engine_t.wall_s:.2f}x the vectorised rate "
        f"(CPU {vectorised_t.cpu_s / engine_t.cpu_s:.2f}x; target >= {TARGET_RATIO}x); promotion's P&L judgement "
        f"{promotion_t.wall_s:.1f} s, CPU {promotion_t.cpu_s:.1f} s (target < {TARGET_S:.0f} s: "
        f"{'met' if is_met else 'MISSED'}); load {load_before:.1f} -> {load_after:.1f}{quiet}"
    )
    baseline = f"vectorised {rows / vectorised_t.wall_s:,.0f} rows/s"
    if live_t is not None:
        baseline = (
            f"live path {rows / live_t.wall_s:,.0f} rows/s ({rows / live_t.cpu_s:,.0f} per CPU s), "
            f"{live_t.wall_s / engine_t.wall_s:.1f}x; {baseline}"
        )
    is_rate_met = fast_rate >= TARGET_ROWS_PER_S if is_target_size else None
    target = f">= {TARGET_ROWS_PER_S:,} rows/s" if is_target_size else ""
    record(
        f"engine backtest, fast replay, {rows:,} rows (CPU: {fast_cpu_rate:,.0f} rows/s)",
        fast_rate,
        "rows/s",
        baseline=baseline,
        target=target,
        is_met=is_rate_met,
    )
    ratio, cpu_ratio = vectorised_t.wall_s / engine_t.wall_s, vectorised_t.cpu_s / engine_t.cpu_s
    record(
        f"engine backtest, fast replay / vectorised, {rows:,} rows (CPU: {cpu_ratio:.2f}x)",
        ratio,
        "x",
        baseline=f"fast replay {fast_rate:,.0f} rows/s, vectorised {rows / vectorised_t.wall_s:,.0f} rows/s",
        target=f">= {TARGET_RATIO}x" if is_ratio_target else "",
        is_met=ratio >= TARGET_RATIO if is_ratio_target else None,
    )
    if unchained is not None and unchained_t is not None:
        is_same = unchained.replay.events == engine.replay.events and unchained.pnl_account == engine.pnl_account
        record(
            f"engine backtest, fast replay, audit chain not linked, {rows:,} rows (CPU: "
            f"{rows / unchained_t.cpu_s:,.0f} rows/s)",
            rows / unchained_t.wall_s,
            "rows/s",
            baseline=f"with the chain {fast_rate:,.0f} rows/s; same journal and P&L: {is_same}",
            target=target,
            is_met=rows / unchained_t.wall_s >= TARGET_ROWS_PER_S,
        )
    record(
        f"promotion P&L on the engine (candidate + 2 baselines), {rows:,} rows (CPU: {promotion_t.cpu_s:.1f} s)",
        promotion_t.wall_s,
        "s",
        baseline=f"vectorised {vectorised_t.wall_s:.2f} s",
        target=f"< {TARGET_S:.0f} s" if is_target_size else "",
        is_met=is_met if is_target_size else None,
    )


if __name__ == "__main__":
    main()
