"""The benchmarks' nearest-rank percentile."""

from __future__ import annotations

import pytest

from bench.stats import percentile


@pytest.mark.parametrize(
    ("count", "share", "rank"),
    [(10, 0.95, 10), (20, 0.95, 19), (40, 0.95, 38), (100, 0.95, 95), (10, 0.5, 5), (11, 0.5, 6), (1, 0.95, 1)],
)
def test_percentile_when_nearest_rank_then_the_smallest_value_with_the_share_at_or_below(
    count: int, share: float, rank: int
) -> None:
    values = [float(number) for number in range(count, 0, -1)]  # unsorted: count .. 1

    assert percentile(values, share) == rank
