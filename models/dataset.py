"""Point-in-time datasets: the warehouse's features at bar t, labelled by the mid over bars t+1..t+h.

One row per symbol and bar close. The features are the stream's own ``FeatureVector``
values at the close of bar t (computed from bars up to t); the label is the direction
of the mid close from bar t to bar t+h of the same symbol's series:

- ``up`` when ``mid[t+h] / mid[t] - 1 > dead_zone_bps / 10_000``,
- ``down`` when it is below ``-dead_zone_bps / 10_000``,
- ``flat`` otherwise (moves smaller than the costs are not worth a trade).

Point in time: nothing here looks across rows except the label (bars t+1..t+h of the
same symbol) and the outcome columns the backtest needs (``next_mid_close`` at t+1;
bid and ask at t); no statistic is taken over the range, and a bar whose horizon
reaches past the end of the range gets no label (so a dataset ending at ``to`` never
uses data from after ``to``). ``label_end_ms`` is when the label becomes known: the
walk-forward folds purge training rows whose label is not known before a test block.

:func:`build_dataset` is pure (tested without a warehouse); :func:`load_dataset` is the
thin shell that queries the warehouse.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from models.errors import InvalidFeaturesError, NotEnoughDataError, SchemaMismatchError
from tickwave.contracts import Bar
from tickwave.errors import ConfigurationError

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client

logger = logging.getLogger(__name__)

LABELS = ("down", "flat", "up")  # class index -> label, as ModelArtifact.labels
DOWN, FLAT, UP = 0, 1, 2
NO_LABEL = -1
BAR_COLUMNS: tuple[str, ...] = Bar.__struct_fields__  # the stored bar is the contract's, field for field
OUTCOME_COLUMNS = (
    "symbol",
    "bar_start_ms",
    "label_end_ms",
    "label",
    "mid_close",
    "next_mid_close",
    "bid_close",
    "ask_close",
    "previous_mid_close",
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class LabelSpec:
    """How a bar is labelled: the horizon in bars and the dead zone in basis points."""

    horizon_bars: int
    dead_zone_bps: float

    def describe(self) -> str:
        """Return the label definition in words (stored in the model's metadata)."""
        return (
            f"direction of the mid close from bar t to bar t+{self.horizon_bars} of the same symbol: "
            f"up above +{self.dead_zone_bps:g} bps, down below -{self.dead_zone_bps:g} bps, flat otherwise"
        )


def direction_labels(mid_close: np.ndarray, horizon_bars: int, dead_zone_bps: float) -> np.ndarray:
    """Label each bar of one symbol's series (in time order) by the mid's move over ``horizon_bars``.

    Returns:
        ``int8`` class indices (``DOWN``, ``FLAT``, ``UP``); ``NO_LABEL`` for the last
        ``horizon_bars`` bars, whose horizon runs past the series.
    """
    labels = np.full(len(mid_close), NO_LABEL, dtype=np.int8)
    if len(mid_close) <= horizon_bars:
        return labels
    move_bps = (mid_close[horizon_bars:] / mid_close[:-horizon_bars] - 1.0) * 10_000.0
    labels[:-horizon_bars] = np.where(move_bps > dead_zone_bps, UP, np.where(move_bps < -dead_zone_bps, DOWN, FLAT))
    return labels


@dataclass(frozen=True)
class Dataset:
    """Labelled feature rows sorted by (bar_start_ms, symbol), with the outcome columns the backtest needs.

    ``frame`` columns: ``symbol``, ``bar_start_ms``, ``label_end_ms``, ``label``,
    ``mid_close``, ``next_mid_close``, ``bid_close``, ``ask_close``, then one column per
    feature, in model order.
    """

    frame: pd.DataFrame
    feature_names: tuple[str, ...]
    schema_hash: str
    label_spec: LabelSpec
    timeframe: str
    from_ms: int
    to_ms: int

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def features(self) -> np.ndarray:
        """The feature matrix as float32, the precision the served ONNX model receives."""
        features: np.ndarray = self.frame.loc[:, list(self.feature_names)].to_numpy(dtype=np.float32)
        return features

    def _integers(self, column: str) -> np.ndarray:
        values: np.ndarray = self.frame[column].to_numpy(dtype=np.int64)
        return values

    @property
    def labels(self) -> np.ndarray:
        """Class indices (``DOWN``, ``FLAT``, ``UP``)."""
        return self._integers("label")

    @property
    def times_ms(self) -> np.ndarray:
        """Bar start of every row (non-decreasing)."""
        return self._integers("bar_start_ms")

    @property
    def label_end_ms(self) -> np.ndarray:
        """When each row's label becomes known (start of bar t+h)."""
        return self._integers("label_end_ms")

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols present, sorted."""
        return tuple(sorted(self.frame["symbol"].unique()))

    def take(self, rows: np.ndarray) -> Dataset:
        """Return the dataset restricted to ``rows`` (positions, in order)."""
        frame = self.frame.iloc[rows].reset_index(drop=True)
        return Dataset(
            frame, self.feature_names, self.schema_hash, self.label_spec, self.timeframe, self.from_ms, self.to_ms
        )


def _labelled_bars(bars: pd.DataFrame, label_spec: LabelSpec) -> pd.DataFrame:
    # One symbol at a time, in time order: label, label end, next mid and spread at the close.
    parts = []
    for symbol, series in bars.groupby("symbol", sort=True):
        series = series.sort_values("start_ms").drop_duplicates("start_ms", keep="last")
        mid = series["mid_close"].to_numpy(dtype=np.float64)
        starts = series["start_ms"].to_numpy(dtype=np.int64)
        horizon = label_spec.horizon_bars
        label_end = np.full(len(starts), -1, dtype=np.int64)
        label_end[:-horizon] = starts[horizon:]
        next_mid = np.full(len(mid), np.nan)
        next_mid[:-1] = mid[1:]
        previous_mid = np.full(len(mid), np.nan)  # the bar before's close: the "last bar's direction" baseline
        previous_mid[1:] = mid[:-1]
        parts.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "bar_start_ms": starts,
                    "label_end_ms": label_end,
                    "label": direction_labels(mid, horizon, label_spec.dead_zone_bps),
                    "mid_close": mid,
                    "next_mid_close": next_mid,
                    "bid_close": series["bid_close"].to_numpy(dtype=np.float64),
                    "ask_close": series["ask_close"].to_numpy(dtype=np.float64),
                    "previous_mid_close": previous_mid,
                }
            )
        )
    if not parts:
        return pd.DataFrame(columns=list(OUTCOME_COLUMNS))
    labelled = pd.concat(parts, ignore_index=True)
    return labelled[labelled["label"] != NO_LABEL]


def _warm_rows(features: pd.DataFrame, names: Sequence[str], schema_hash: str) -> pd.DataFrame:
    # Rows of the requested feature schema that are warm, checked for NaN / inf / missing values.
    of_schema = features[features["schema_hash"] == schema_hash]
    if of_schema.empty and not features.empty:
        found = ", ".join(sorted(features["schema_hash"].unique()))
        raise SchemaMismatchError(
            f"the features in range have feature schema {found}, the model's feature set is {schema_hash}: "
            "train with the feature set the streams ran, or replay the ticks through the current streams"
        )
    warm = of_schema[of_schema["is_warm"].astype(bool)]
    warm = warm.drop_duplicates(["symbol", "bar_start_ms"], keep="last")
    values = warm.loc[:, list(names)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        column = int(np.argmax(bad.any(axis=0)))
        first = int(np.argmax(bad[:, column]))
        row = warm.iloc[first]
        raise InvalidFeaturesError(
            f"feature {names[column]} is NaN, infinite or missing in {int(bad[:, column].sum())} warm rows "
            f"(first: {row['symbol']} at {iso_utc(int(row['bar_start_ms']))}); "
            f"{int(bad.any(axis=1).sum())} rows in all: fix the features upstream, nothing was trained"
        )
    result = warm.loc[:, ["symbol", "bar_start_ms"]].copy()
    result[list(names)] = values
    return result


def build_dataset(
    features: pd.DataFrame,
    bars: pd.DataFrame,
    feature_names: Sequence[str],
    schema_hash: str,
    label_spec: LabelSpec,
    timeframe: str,
    range_ms: tuple[int, int],
    min_rows: int,
    require_classes: bool = True,
) -> Dataset:
    """Join warm feature rows with their bar's label; check the result can be trained on.

    Args:
        features: ``symbol``, ``bar_start_ms``, ``is_warm``, ``schema_hash`` and one
            column per feature name (as stored in the warehouse ``features`` table).
        bars: at least ``symbol``, ``start_ms``, ``mid_close``, ``bid_close``,
            ``ask_close`` of the same timeframe and range.
        feature_names: the features in model order.
        schema_hash: the feature schema the model is trained for.
        label_spec: horizon and dead zone.
        timeframe: the bars' timeframe (recorded with the dataset).
        range_ms: the requested ``[from, to)`` range, recorded as the data range.
        min_rows: fewest labelled rows accepted.
        require_classes: require every label to occur (training does; scoring a holdout does not).

    Raises:
        SchemaMismatchError: no feature rows of ``schema_hash`` in range but rows of another.
        InvalidFeaturesError: a warm row holds NaN, infinity or a missing value.
        NotEnoughDataError: fewer than ``min_rows`` rows, or (``require_classes``) not all
            three classes present.
    """
    warm = _warm_rows(features, feature_names, schema_hash)
    labelled = _labelled_bars(bars, label_spec)
    frame = labelled.merge(warm, on=["symbol", "bar_start_ms"], how="inner", validate="one_to_one")
    frame = frame.sort_values(["bar_start_ms", "symbol"], kind="stable").reset_index(drop=True)
    frame["label"] = frame["label"].astype(np.int8)
    dataset = Dataset(frame, tuple(feature_names), schema_hash, label_spec, timeframe, *range_ms)
    symbols = ",".join(sorted(bars["symbol"].unique())) or "no symbols"
    where = f"{symbols} {timeframe} {iso_utc(range_ms[0])}..{iso_utc(range_ms[1])}"
    if len(frame) < min_rows:
        raise NotEnoughDataError(
            f"{len(frame)} labelled rows with warm features for {where}; at least {min_rows} needed "
            "(models.min_rows): widen the range or add symbols"
        )
    if require_classes:
        require_all_classes(dataset.labels, where)
    logger.info(
        "dataset %s: %d rows, %d features, label counts %s",
        where,
        len(frame),
        len(feature_names),
        class_counts(dataset.labels),
    )
    return dataset


def class_counts(labels: np.ndarray) -> dict[str, int]:
    """Return the number of rows of each label."""
    counts = np.bincount(labels, minlength=len(LABELS))
    return {label: int(counts[index]) for index, label in enumerate(LABELS)}


def require_all_classes(labels: np.ndarray, where: str) -> None:
    """Raise unless every label occurs in ``labels`` (the model outputs all three).

    Raises:
        NotEnoughDataError: naming the single class, or the missing ones.
    """
    counts = class_counts(labels)
    present = [label for label, count in counts.items() if count]
    if len(present) == 1:
        raise NotEnoughDataError(
            f"every row of {where} is labelled {present[0]!r} (a single class): widen the range, "
            "or lower models.dead_zone_bps if the market moved less than it"
        )
    missing = [label for label, count in counts.items() if not count]
    if missing:
        raise NotEnoughDataError(
            f"no row of {where} is labelled {', '.join(missing)} (counts {counts}): widen the range, "
            "or adjust models.dead_zone_bps / models.horizon_bars"
        )


def iso_utc(ms: int) -> str:
    """Return epoch milliseconds as ``2024-01-02T03:04:05Z``."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------------------
# The warehouse shell
# ---------------------------------------------------------------------------------------

# Epoch-millisecond columns are selected under other names: a ClickHouse alias equal to a
# column's name would replace the column in WHERE (and compare integers with times).
_RANGE = (
    "timeframe = {timeframe:String} AND symbol IN {symbols:Array(String)} "
    "AND {time} >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC') "
    "AND {time} < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')"
)


def query_features(
    client: Client, symbols: Sequence[str], timeframe: str, range_ms: tuple[int, int], names: Sequence[str]
) -> pd.DataFrame:
    """Read the stored feature rows of ``symbols`` in ``[from, to)`` (every schema, warm or not)."""
    for name in names:
        if not _IDENTIFIER.match(name):
            raise ConfigurationError(f"feature name {name!r} is not an identifier")
    columns = ", ".join(f"`values`['{name}'] AS `{name}`" for name in names)
    where = _RANGE.replace("{time}", "bar_start_ms")
    # Only checked identifiers are interpolated; every value is a bound query parameter.
    sql = (
        f"SELECT symbol, toUnixTimestamp64Milli(bar_start_ms) AS bar_start_epoch_ms, is_warm, schema_hash, {columns} "  # noqa: S608
        f"FROM features FINAL WHERE {where} ORDER BY symbol, bar_start_ms"
    )
    parameters = {"timeframe": timeframe, "symbols": list(symbols), "from_ms": range_ms[0], "to_ms": range_ms[1]}
    frame = client.query_df(sql, parameters=parameters).rename(columns={"bar_start_epoch_ms": "bar_start_ms"})
    if frame.empty:  # no rows: clickhouse-connect returns no columns either
        frame = pd.DataFrame(columns=["symbol", "bar_start_ms", "is_warm", "schema_hash", *names])
    for name in names:
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    return frame


def query_bars(client: Client, symbols: Sequence[str], timeframe: str, range_ms: tuple[int, int]) -> pd.DataFrame:
    """Read the bars of ``symbols`` in ``[from, to)`` from ``bars_<timeframe>``.

    Raises:
        ConfigurationError: when the warehouse keeps no bars of ``timeframe``.
    """
    table = f"bars_{timeframe}"
    if not _IDENTIFIER.match(table) or str(client.command(f"EXISTS TABLE {table}")) != "1":
        raise ConfigurationError(f"the warehouse has no table {table}: set models.timeframe to a stored timeframe")
    columns = ", ".join(
        f"toUnixTimestamp64Milli({name}) AS {name}_epoch" if name.endswith("_ms") else name for name in BAR_COLUMNS
    )
    where = _RANGE.replace("{time}", "start_ms")
    sql = f"SELECT {columns} FROM {table} FINAL WHERE {where} ORDER BY symbol, start_ms"  # noqa: S608 (identifiers only)
    parameters = {"timeframe": timeframe, "symbols": list(symbols), "from_ms": range_ms[0], "to_ms": range_ms[1]}
    frame = client.query_df(sql, parameters=parameters).rename(columns=lambda name: name.removesuffix("_epoch"))
    return frame if not frame.empty else pd.DataFrame(columns=list(BAR_COLUMNS))


def query_predictions(
    client: Client,
    model_id: str,
    version: int,
    timeframe: str,
    *,
    role: str | None = None,
    range_ms: tuple[int, int] | None = None,
) -> pd.DataFrame:
    """Read a model version's stored class probabilities per bar: of one ``role``, in ``[from, to)``, when given."""
    columns = ", ".join(f"probabilities['{label}'] AS {label}" for label in LABELS)
    conditions = ["model_id = {model_id:String}", "model_version = {version:UInt32}", "timeframe = {timeframe:String}"]
    parameters: dict[str, object] = {"model_id": model_id, "version": version, "timeframe": timeframe}
    if role is not None:
        conditions.append("role = {role:String}")
        parameters["role"] = role
    if range_ms is not None:
        conditions += [
            "bar_start_ms >= fromUnixTimestamp64Milli({from_ms:Int64}, 'UTC')",
            "bar_start_ms < fromUnixTimestamp64Milli({to_ms:Int64}, 'UTC')",
        ]
        parameters |= {"from_ms": range_ms[0], "to_ms": range_ms[1]}
    sql = (
        f"SELECT symbol, toUnixTimestamp64Milli(bar_start_ms) AS bar_start_epoch_ms, {columns} "  # noqa: S608 (labels are constants)
        f"FROM predictions FINAL WHERE {' AND '.join(conditions)}"
    )
    frame = client.query_df(sql, parameters=parameters)
    if frame.empty:
        return pd.DataFrame(columns=["symbol", "bar_start_ms", *LABELS])
    return frame.rename(columns={"bar_start_epoch_ms": "bar_start_ms"})
