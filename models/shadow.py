"""Live champion / challenger: how a challenger scored in shadow compares with the champion on the same bars.

The dataflow scores every registered challenger (stage ``challenger``) on the feature
vectors the champion of its slot scores, and stores those predictions under the
challenger's own model id (which may differ from the champion's: a LightGBM
``lgbm_direction`` challenging an ``ensemble_direction`` champion) with
``role = 'challenger'`` (never as signals). :func:`compare_live` reads the challenger's shadow predictions and the
champion's predictions of the same bars, labels them with the challenger's label
definition (horizon and dead zone, as the training labels and the drift's decay do), and
returns both log losses and accuracies on the shared labelled rows, and how many days
those rows span. :func:`judge_shadow` turns that into the promotion's shadow criteria:
with ``models.shadow_min_days`` > 0, a challenger replaces the champion only after that
many days of shadow scoring in which it beat the champion's live log loss.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.dataset import LABELS, LabelSpec, query_bars, query_predictions
from models.drift import bar_labels
from models.evaluation import log_loss
from tickwave.modeling import CHALLENGER, CHAMPION

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

DAY_MS = 86_400_000


@dataclass(frozen=True)
class ShadowComparison:
    """The challenger's and the champion's live figures on the bars both scored and whose label is known."""

    rows: int  # shared labelled predictions
    first_bar_ms: int
    last_bar_ms: int
    challenger_log_loss: float | None
    champion_log_loss: float | None
    challenger_accuracy: float | None
    champion_accuracy: float | None

    @property
    def days(self) -> float:
        """How many days the shared labelled rows span (0 with fewer than two)."""
        return (self.last_bar_ms - self.first_bar_ms) / DAY_MS if self.rows > 1 else 0.0

    def figures(self) -> dict[str, float]:
        """The figures recorded with a promotion decision (unknown ones left out)."""
        values = {
            "shadow_days": self.days,
            "shadow_rows": float(self.rows),
            "challenger_live_log_loss": self.challenger_log_loss,
            "champion_live_log_loss": self.champion_log_loss,
            "challenger_live_accuracy": self.challenger_accuracy,
            "champion_live_accuracy": self.champion_accuracy,
        }
        return {name: float(value) for name, value in values.items() if value is not None}


NO_SHADOW = ShadowComparison(0, 0, 0, None, None, None, None)


def judge_shadow(comparison: ShadowComparison, min_days: float) -> tuple[list[str], dict[str, float]]:
    """Return the failed shadow criteria and the figures judged (``min_days`` 0: nothing is required).

    A challenger must have ``min_days`` of shared labelled live predictions with the
    champion, and a strictly lower live log loss on them.
    """
    figures = {**comparison.figures(), "shadow_min_days": float(min_days)}
    if min_days <= 0:
        return [], figures
    failures = []
    if comparison.rows == 0:
        failures.append(
            "no live shadow predictions shared with the champion and labelled yet: shadow it first "
            f"(`tickwave models shadow`), models.shadow_min_days is {min_days:g}"
        )
        return failures, figures
    if comparison.days < min_days:
        failures.append(
            f"scored in shadow over {comparison.days:.2f} days, fewer than models.shadow_min_days ({min_days:g})"
        )
    challenger, champion = comparison.challenger_log_loss, comparison.champion_log_loss
    if challenger is None or champion is None or not challenger < champion:
        failures.append(
            f"live log loss {challenger:.5f} does not beat the champion's {champion:.5f} on the same "
            f"{comparison.rows} bars"
        )
    return failures, figures


def score_shared(
    challenger: pd.DataFrame, champion: pd.DataFrame, bars: pd.DataFrame, label_spec: LabelSpec
) -> ShadowComparison:
    """Score both models' predictions (``symbol``, ``bar_start_ms``, a column per label) on their shared bars."""
    labelled = bar_labels(bars, label_spec)
    if labelled is None or challenger.empty or champion.empty:
        return NO_SHADOW
    shared = challenger.merge(champion, on=["symbol", "bar_start_ms"], suffixes=("_challenger", "_champion"))
    frame = shared.merge(labelled, on=["symbol", "bar_start_ms"], how="inner")
    frame = frame[(frame["label"] >= 0) & (frame["label"] < len(LABELS))]
    if frame.empty:
        return NO_SHADOW
    labels = frame["label"].to_numpy(int)
    mine = frame[[f"{label}_challenger" for label in LABELS]].to_numpy(float)
    theirs = frame[[f"{label}_champion" for label in LABELS]].to_numpy(float)
    times = frame["bar_start_ms"].to_numpy(np.int64)
    return ShadowComparison(
        len(frame),
        int(times.min()),
        int(times.max()),
        log_loss(labels, mine),
        log_loss(labels, theirs),
        float(np.mean(mine.argmax(axis=1) == labels)),
        float(np.mean(theirs.argmax(axis=1) == labels)),
    )


def compare_live(
    client: Client,
    challenger_version: tuple[str, int],
    champion_version: tuple[str, int],
    timeframe: str,
    symbols: list[str],
    label_spec: LabelSpec,
    now_ms: int,
) -> ShadowComparison:
    """Read the challenger's shadow predictions and the champion's of the same bars; score both.

    ``challenger_version`` and ``champion_version``: ``(model_id, version)`` each; the ids may differ.
    """
    challenger = query_predictions(client, *challenger_version, timeframe, role=CHALLENGER)
    if challenger.empty:
        return NO_SHADOW
    champion = query_predictions(client, *champion_version, timeframe, role=CHAMPION)
    bars = query_bars(client, symbols, timeframe, (int(challenger["bar_start_ms"].min()), now_ms + 1))
    return score_shared(challenger, champion, bars, label_spec)


@dataclass(frozen=True)
class LivePerformance:
    """One model version's live figures from ``model_performance_daily`` over a window (or one day of it)."""

    model_id: str
    timeframe: str
    model_version: int
    role: str
    stage: str  # the version's registry stage now
    slot: str  # the model id naming its slot now (its champion's, for a challenger of another model id)
    day: str  # the day, or "" for the whole window
    days: int
    predictions: int
    scored: int
    hit_rate: float | None
    accuracy: float | None
    log_loss: float | None


def live_performance(
    client: Client, days: int, model_id: str = "", timeframe: str = "", daily: bool = False
) -> list[LivePerformance]:
    """Read the model-performance mart's last ``days`` days: per version and role (and day, with ``daily``).

    The window's figures weigh each day by its scored (hit rate: directional) predictions.
    Rows come per slot (``(slot, timeframe)``), the champion first, then its challengers of
    every model id. ``model_id``: the slots that model id is in (as champion or challenger),
    whole, so a challenger is shown beside its champion.

    Raises:
        ConfigurationError: when the mart is not built yet.
    """
    from tickwave.errors import ConfigurationError

    if str(client.command("EXISTS TABLE model_performance_daily")) != "1":
        raise ConfigurationError(
            "model_performance_daily is not built yet: run the Dagster job dbt_daily_marts "
            "(`tickwave orchestrate`, or `tickwave demo`)"
        )
    day = "toString(day)" if daily else "''"
    slot = "if(slot = '', model_id, slot)"  # rows built before the mart had the column: the model's own slot
    result = client.query(
        "SELECT model_id, timeframe, model_version, role, any(stage) AS stage_now, "  # noqa: S608 (constants)
        f"any({slot}) AS slot_now, {day} AS on_day, "
        "uniqExact(day) AS days_seen, sum(predictions) AS made, sum(scored_predictions) AS scored, "
        "sum(hit_rate * directional_predictions) / nullIf(sumIf(directional_predictions, hit_rate IS NOT NULL), 0) "
        "AS live_hit_rate, "
        "sum(accuracy * scored_predictions) / nullIf(sumIf(scored_predictions, accuracy IS NOT NULL), 0) "
        "AS live_accuracy, "
        "sum(log_loss * scored_predictions) / nullIf(sumIf(scored_predictions, log_loss IS NOT NULL), 0) "
        "AS live_log_loss FROM model_performance_daily "
        "WHERE day > today() - {days:UInt32} AND ({model_id:String} = '' "
        f"OR {slot} IN (SELECT {slot} FROM model_performance_daily "
        "WHERE model_id = {model_id:String} OR slot = {model_id:String})) "
        "AND ({timeframe:String} = '' OR timeframe = {timeframe:String}) "
        "GROUP BY model_id, timeframe, model_version, role, on_day "
        "ORDER BY slot_now, timeframe, on_day, role != 'champion', model_id, model_version",
        parameters={"days": days, "model_id": model_id, "timeframe": timeframe},
    )
    return [
        LivePerformance(
            str(row[0]),
            str(row[1]),
            int(row[2]),
            str(row[3]),
            str(row[4]),
            str(row[5]),
            str(row[6]),
            int(row[7]),
            int(row[8]),
            int(row[9]),
            *(None if value is None else float(value) for value in row[10:13]),
        )
        for row in result.result_rows
    ]
