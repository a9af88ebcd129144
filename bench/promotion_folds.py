"""The promotion's P&L judged walk-forward: every window through the engine, candidate and baselines.

On the synthetic holdout of ``bench/backtest.py`` (1-minute bars of EURUSD, USDJPY and
XAUUSD, random walks, random probabilities), cut by time into ``--windows`` windows (the
default 5: 4 walk-forward folds and the holdout), each judged by
``models.fold_judgement.judge_window``: the candidate and ``last_direction`` replayed through
the execution engine (``flat`` never holds a position: not replayed), the per-window P&L,
trades, hit rate and max drawdown, and the vectorised cross-check; then the fold rule.

The default 200,000 rows are the holdout of a 1M-row training run. Target: the judgement of
200,000 rows, every window, under 30 s. In a training run of that size, the promotion
replays the holdout (these rows) and ``tickwave train`` replays the walk-forward folds'
test blocks once more after training (4/5 of the development rows: 3.2x as many here).

Run: .venv/bin/python -m bench.promotion_folds [--rows 200000] [--windows 5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.backtest import cpu_s as cpu_seconds
from bench.backtest import synthetic_holdout
from bench.summary import record

TARGET_S = 30.0


def main() -> None:
    """Time the walk-forward judgement of a synthetic holdout; print the per-fold table and record the time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--windows", type=int, default=5)
    arguments = parser.parse_args()
    from models.fold_figures import HOLDOUT, folds_table
    from models.fold_judgement import judge_window, judgement_pool
    from models.promotion import fold_share_failures
    from tickwave.config import load_settings
    from tickwave.modeling import SignalRules

    console = Console()
    load_before = os.getloadavg()[0]
    frame, probabilities = synthetic_holdout(arguments.rows)
    order = np.argsort(frame["bar_start_ms"].to_numpy(), kind="stable")
    frame, probabilities = frame.iloc[order].reset_index(drop=True), probabilities[order]
    bounds = np.linspace(0, len(frame), arguments.windows + 1).round().astype(int)
    rules = SignalRules()
    with tempfile.TemporaryDirectory() as state:
        settings = load_settings(
            state_dir=Path(state), market={"hours": "always"}, execution={"risk": {"daily_loss_limit": 1e9}}
        )
        started, cpu_started = time.perf_counter(), cpu_seconds()
        folds = []
        # One pool for every window, as judge_walk_forward does (its worker starts once).
        with judgement_pool(settings, int(np.diff(bounds).max()), 2) as pool:
            for index in range(arguments.windows):
                rows = slice(int(bounds[index]), int(bounds[index + 1]))
                name = HOLDOUT if index == arguments.windows - 1 else str(index)
                folds.append(
                    judge_window(
                        name,
                        frame.iloc[rows],
                        probabilities[rows],
                        rules,
                        settings,
                        "1m",
                        ("flat", "last_direction"),
                        "bench",
                        1,
                        pool=pool,
                    ).fold
                )
        failures, _ = fold_share_failures(folds, settings.models.promotion_min_fold_share)
        judged_s, cpu_s = time.perf_counter() - started, cpu_seconds() - cpu_started
    load_after = os.getloadavg()[0]
    for line in folds_table(folds):
        console.print(line, markup=False, highlight=False)
    console.print(failures[0] if failures else "won in enough folds", markup=False)
    is_met = judged_s < TARGET_S
    quiet = "" if max(load_before, load_after) <= 2 else " (not quiet)"
    console.print(
        f"walk-forward judgement of {len(frame):,} rows in {arguments.windows} windows: {judged_s:.1f} s, "
        f"{judged_s / len(frame) * 1e6:.0f} us per row, CPU {cpu_s:.1f} s (target < {TARGET_S:.0f} s: "
        f"{'met' if is_met else 'MISSED'}); load {load_before:.1f} -> {load_after:.1f}{quiet}"
    )
    record(
        f"promotion P&L walk-forward on the engine ({arguments.windows} windows), {len(frame):,} rows",
        judged_s,
        "s",
        target=f"< {TARGET_S:.0f} s",
        is_met=is_met,
    )


if __name__ == "__main__":
    main()
