"""Backtests: the engine backtest (the live execution service, replayed) against the vectorised one.

In one run, on the same synthetic holdout (1-minute bars of EURUSD, USDJPY and XAUUSD,
random walks, random probabilities from which about half the rows signal):

- the vectorised backtest (``models.evaluation.backtest``) of the candidate's signals;
- the engine backtest of the same signals (``models.engine_backtest.run_engine``: the
  execution service, risk gate, sizing, journal and paper broker under a replayed clock);
- the promotion's whole P&L judgement (``compare_on_engine``: the candidate and the two
  baselines through the engine, plus the vectorised cross-check).

The default 200,000 rows are the holdout of a 1M-row training run (``holdout_fraction`` 0.2),
the size ``bench/models.py`` trains on. Target: the promotion's P&L judgement under 120 s
(the training budget of one model), so it may replace the vectorised one at training sizes.

Run: .venv/bin/python -m bench.backtest [--rows 200000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from bench.summary import record

SYMBOLS = {"EURUSD": (1.1, 0.0001), "USDJPY": (150.0, 0.01), "XAUUSD": (2000.0, 0.2)}
WEDNESDAY_MS = 1_700_049_600_000
TARGET_S = 120.0


def synthetic_holdout(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Consecutive 1-minute bars per symbol (random walks, fixed spreads) and random probabilities."""
    rng = np.random.default_rng(seed)
    per_symbol = rows // len(SYMBOLS)
    parts = []
    for symbol, (start, spread) in SYMBOLS.items():
        mid = np.round(start * np.exp(np.cumsum(rng.normal(0, 2e-4, per_symbol + 1))), 5)
        starts = WEDNESDAY_MS + np.arange(per_symbol, dtype=np.int64) * 60_000
        parts.append(pd.DataFrame({
            "symbol": symbol, "bar_start_ms": starts, "mid_close": mid[:-1], "next_mid_close": mid[1:],
            "previous_mid_close": np.concatenate([[np.nan], mid[:-2]]),
            "bid_close": mid[:-1] - spread / 2, "ask_close": mid[:-1] + spread / 2,
        }))  # fmt: skip
    frame = pd.concat(parts, ignore_index=True)
    raw = rng.dirichlet([1.0, 1.0, 1.0], size=len(frame))
    return frame, raw


def main() -> None:
    """Time both backtests on the same holdout; print and record the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    arguments = parser.parse_args()
    from models.engine_backtest import compare_on_engine, holdout_signals, holdout_ticks, run_engine
    from models.evaluation import BacktestSettings, backtest, signal_positions
    from tickwave.config import load_settings
    from tickwave.modeling import SignalRules

    console = Console()
    load_before = os.getloadavg()[0]
    frame, probabilities = synthetic_holdout(arguments.rows)
    rules = SignalRules()
    # The live defaults, except the market hours (the synthetic bars run through weekends) and the loss limit.
    with tempfile.TemporaryDirectory() as state:
        settings = load_settings(state_dir=Path(state),
                                 market={"hours": "always"}, execution={"risk": {"daily_loss_limit": 1e9}})  # fmt: skip

        started = time.perf_counter()
        vectorised = backtest(frame, signal_positions(probabilities, rules), BacktestSettings.from_settings(settings))
        vectorised_s = time.perf_counter() - started

        started = time.perf_counter()
        ticks, signals = holdout_ticks(frame, "1m"), holdout_signals(frame, probabilities, rules, "1m", "bench", 1)
        session_s = time.perf_counter() - started
        started = time.perf_counter()
        engine = run_engine(settings, ticks, signals)
        engine_s = time.perf_counter() - started

        started = time.perf_counter()
        comparison = compare_on_engine(frame, probabilities, rules, settings, "1m", ("flat", "last_direction"))
        promotion_s = time.perf_counter() - started
    load_after = os.getloadavg()[0]

    table = Table(title=f"backtests of {len(frame):,} holdout rows ({len(ticks):,} ticks, {len(signals):,} signals)")
    for column in ("what", "time", "per row", "P&L (USD)", "orders"):
        table.add_column(column)
    table.add_row("vectorised (baseline)", f"{vectorised_s:.2f} s", f"{vectorised_s / len(frame) * 1e6:.1f} us",
                  f"{vectorised.pnl_account:.2f}", "-")  # fmt: skip
    table.add_row("session built (ticks + signals)", f"{session_s:.2f} s", f"{session_s / len(frame) * 1e6:.1f} us",
                  "", "")  # fmt: skip
    table.add_row("engine backtest", f"{engine_s:.2f} s", f"{engine_s / len(frame) * 1e6:.1f} us",
                  f"{engine.pnl_account:.2f}", f"{engine.orders:,}")  # fmt: skip
    table.add_row("promotion P&L (candidate + 2 baselines on the engine, vectorised cross-check)",
                  f"{promotion_s:.2f} s", f"{promotion_s / len(frame) * 1e6:.1f} us",
                  f"{comparison.candidate_pnl_account:.2f}", "")  # fmt: skip
    console.print(table)
    console.print(engine.summary("the candidate"))
    is_met = promotion_s < TARGET_S
    quiet = "" if max(load_before, load_after) <= 2 else " (not quiet)"
    console.print(f"engine / vectorised: {engine_s / vectorised_s:.1f}x; promotion's P&L judgement {promotion_s:.1f} s "
                  f"(target < {TARGET_S:.0f} s: {'met' if is_met else 'MISSED'}); "
                  f"load {load_before:.1f} -> {load_after:.1f}{quiet}")  # fmt: skip
    baseline = f"vectorised {vectorised_s:.2f} s"
    record(f"engine backtest, {len(frame):,} holdout rows", engine_s, "s", baseline=baseline)
    record(f"promotion P&L on the engine (candidate + 2 baselines), {len(frame):,} rows", promotion_s, "s",
           baseline=baseline, target=f"< {TARGET_S:.0f} s", is_met=is_met)  # fmt: skip


if __name__ == "__main__":
    main()
