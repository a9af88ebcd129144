"""What a promotion judged walk-forward records: per window, the candidate's and each baseline's engine figures.

Plain frozen records (no engine, no warehouse), so the pure promotion rules
(:func:`models.promotion.fold_share_failures`) and the registry can read them; the engine
runs that produce them are in :mod:`models.fold_judgement`. Money is exact (``Decimal``);
the registry's map of figures holds it to the cent (``fold_<name>_<strategy>_pnl_account``)
and reads it back exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tickwave.money import quantize, to_decimal

HOLDOUT = "holdout"
_FOLD_ROWS = re.compile(r"fold_(\d+)_rows")  # a recorded walk-forward fold


@dataclass(frozen=True)
class StrategyFigures:
    """One strategy's engine backtest over one window."""

    pnl_account: Decimal  # realised + open at the last mids, account currency, exact
    trades: int  # positions opened
    orders: int
    hit_rate: float | None  # closing fills with a realised gain / closing fills (None: none closed)
    max_drawdown_account: Decimal

    def figures(self, prefix: str) -> dict[str, float]:
        """Return the figures under ``prefix`` (money to the cent, as the registry records it)."""
        figures = {
            f"{prefix}pnl_account": float(quantize(self.pnl_account)),
            f"{prefix}trades": float(self.trades),
            f"{prefix}orders": float(self.orders),
            f"{prefix}max_drawdown_account": float(quantize(self.max_drawdown_account)),
        }
        if self.hit_rate is not None:  # no closing fill, no hit rate (and no NaN in the registry or in JSON)
            figures[f"{prefix}hit_rate"] = self.hit_rate
        return figures

    @classmethod
    def from_figures(cls, figures: Mapping[str, float], prefix: str) -> StrategyFigures | None:
        """Read back what :meth:`figures` wrote (money exactly to the cent); None when it is not there."""
        try:
            hit_rate = figures.get(f"{prefix}hit_rate")
            return cls(
                pnl_account=quantize(to_decimal(float(figures[f"{prefix}pnl_account"]))),
                trades=int(figures[f"{prefix}trades"]),
                orders=int(figures[f"{prefix}orders"]),
                hit_rate=None if hit_rate is None else float(hit_rate),
                max_drawdown_account=quantize(to_decimal(float(figures[f"{prefix}max_drawdown_account"]))),
            )
        except KeyError:
            return None


NO_POSITION = StrategyFigures(Decimal(0), 0, 0, None, Decimal(0))


@dataclass(frozen=True)
class FoldJudgement:
    """The candidate and each baseline on the engine over one window (a walk-forward fold or the holdout)."""

    name: str  # the walk-forward fold's index ("0", "1", ...) or "holdout"
    rows: int
    candidate: StrategyFigures
    baselines: dict[str, StrategyFigures]
    notes: tuple[str, ...] = field(default=(), compare=False)  # orders, trades and denials of each run

    def lost_to(self) -> list[str]:
        """Return the baselines whose P&L the candidate does not beat strictly (a tie is not a win)."""
        return [
            name for name, figures in self.baselines.items() if not self.candidate.pnl_account > figures.pnl_account
        ]

    @property
    def label(self) -> str:
        """How reasons and tables name the window: ``fold 2`` or ``holdout``."""
        return self.name if self.name == HOLDOUT else f"fold {self.name}"

    def figures(self) -> dict[str, float]:
        """Return every figure as ``fold_<name>_<strategy>_<figure>`` (and ``fold_<name>_rows``)."""
        prefix = f"fold_{self.name}_"
        figures = {f"{prefix}rows": float(self.rows), **self.candidate.figures(f"{prefix}candidate_")}
        for name, strategy in self.baselines.items():
            figures.update(strategy.figures(f"{prefix}{name}_"))
        return figures

    @classmethod
    def from_figures(cls, figures: Mapping[str, float], name: str, baselines: Sequence[str]) -> FoldJudgement | None:
        """Read back a window :meth:`figures` wrote; None when it, or one of ``baselines``, is not recorded."""
        prefix = f"fold_{name}_"
        candidate = StrategyFigures.from_figures(figures, f"{prefix}candidate_")
        read = {baseline: StrategyFigures.from_figures(figures, f"{prefix}{baseline}_") for baseline in baselines}
        if candidate is None or f"{prefix}rows" not in figures or None in read.values():
            return None
        return cls(
            name,
            int(figures[f"{prefix}rows"]),
            candidate,
            {baseline: value for baseline, value in read.items() if value is not None},
        )


def recorded_folds(figures: Mapping[str, float], baselines: Sequence[str]) -> list[FoldJudgement]:
    """Return the walk-forward folds recorded at training (``fold_<n>_*`` in a version's metrics), in order."""
    names = sorted({match[1] for key in figures if (match := _FOLD_ROWS.fullmatch(key))}, key=int)
    folds = [FoldJudgement.from_figures(figures, name, baselines) for name in names]
    return [fold for fold in folds if fold is not None]


def judged_folds(figures: Mapping[str, float], baselines: Sequence[str]) -> list[FoldJudgement]:
    """Return every window a decision's figures hold: the walk-forward folds in order, then the holdout."""
    holdout = FoldJudgement.from_figures(figures, HOLDOUT, baselines)
    return recorded_folds(figures, baselines) + ([holdout] if holdout is not None else [])


def folds_table(folds: Sequence[FoldJudgement]) -> list[str]:
    """Return the per-fold table as text lines: P&L, trades, hit rate and max drawdown per strategy, won or lost."""
    if not folds:
        return []
    strategies = ["candidate", *folds[0].baselines]
    header = f"{'fold':<8} {'rows':>7}  " + "  ".join(
        f"{name + ' P&L / trades / hit / max dd':>44}" for name in strategies
    )
    lines = [header]
    for fold in folds:
        cells = [_cell(figures) for figures in (fold.candidate, *fold.baselines.values())]
        lost = fold.lost_to()
        verdict = "won" if not lost else f"lost to {', '.join(lost)}"
        lines.append(f"{fold.label:<8} {fold.rows:>7}  " + "  ".join(f"{cell:>44}" for cell in cells) + f"  {verdict}")
    return lines


def _cell(figures: StrategyFigures) -> str:
    hit = "-" if figures.hit_rate is None else f"{figures.hit_rate:.1%}"
    return f"{quantize(figures.pnl_account)} / {figures.trades} / {hit} / {quantize(figures.max_drawdown_account)}"
