"""The live champion / challenger comparison: shared labelled bars, and the shadow criteria of promotion."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from models.dataset import LabelSpec
from models.shadow import DAY_MS, NO_SHADOW, ShadowComparison, judge_shadow, score_shared

T0 = 1_700_000_000_000


def bars(closes: list[float]) -> pd.DataFrame:
    return pd.DataFrame(
        {"symbol": "EURUSD", "start_ms": [T0 + i * 60_000 for i in range(len(closes))], "mid_close": closes}
    )


def predictions(rows: list[tuple[int, tuple[float, float, float]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"symbol": "EURUSD", "bar_start_ms": T0 + i * 60_000, "down": p[0], "flat": p[1], "up": p[2]} for i, p in rows]
    )


def test_score_shared_when_both_scored_some_bars_then_only_the_shared_labelled_ones_count() -> None:
    # up, down, (flat), then the last bar has no label (horizon 1)
    history = bars([1.0, 1.01, 1.0, 1.0])
    sure = (0.1, 0.1, 0.8)
    challenger = predictions([(0, sure), (1, (0.8, 0.1, 0.1)), (2, (0.1, 0.8, 0.1)), (3, sure)])
    champion = predictions([(0, (1 / 3, 1 / 3, 1 / 3)), (1, (1 / 3, 1 / 3, 1 / 3)), (3, sure)])  # missed bar 2

    comparison = score_shared(challenger, champion, history, LabelSpec(1, 1.0))

    assert comparison.rows == 2  # bars 0 and 1: bar 2 only the challenger scored, bar 3 has no label
    assert comparison.challenger_log_loss == pytest.approx(-math.log(0.8))
    assert comparison.champion_log_loss == pytest.approx(math.log(3))
    assert (comparison.challenger_accuracy, comparison.first_bar_ms, comparison.last_bar_ms) == (1.0, T0, T0 + 60_000)


def shadow(days: float, challenger: float, champion: float) -> ShadowComparison:
    return ShadowComparison(100, T0, T0 + int(days * DAY_MS), challenger, champion, 0.5, 0.4)


@pytest.mark.parametrize(
    ("comparison", "min_days", "failed"),
    [
        (shadow(3.0, 0.9, 1.0), 2.0, []),
        (shadow(1.5, 0.9, 1.0), 2.0, ["fewer than models.shadow_min_days"]),
        (shadow(3.0, 1.0, 1.0), 2.0, ["does not beat the champion's"]),
        (shadow(0.5, 1.2, 1.0), 2.0, ["fewer than models.shadow_min_days", "does not beat the champion's"]),
        (NO_SHADOW, 2.0, ["shadow it first"]),
        (NO_SHADOW, 0.0, []),  # off by default: judged on the holdout alone
        (shadow(0.5, 1.2, 1.0), 0.0, []),
    ],
)
def test_judge_shadow_when_criteria_vary_then_each_failure_named_and_every_figure_recorded(
    comparison: ShadowComparison, min_days: float, failed: list[str]
) -> None:
    failures, figures = judge_shadow(comparison, min_days)

    assert len(failures) == len(failed)
    assert all(part in failure for part, failure in zip(failed, failures, strict=True))
    assert figures["shadow_min_days"] == min_days
    if comparison.rows:
        assert figures["shadow_days"] == pytest.approx(comparison.days)
        assert figures["challenger_live_log_loss"] == comparison.challenger_log_loss
        assert figures["champion_live_log_loss"] == comparison.champion_log_loss
