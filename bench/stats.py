"""Order statistics the benchmarks report."""

from __future__ import annotations

import math


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value with at least ``share`` of ``values`` at or below it.

    Of 20 values the 0.95 percentile is the 19th smallest, of 10 the largest.
    """
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(share * len(ordered) - 1e-9))) - 1]
