"""The training report: one HTML page with PNG plots, saved beside the model.

Plots (matplotlib's Agg renderer through ``Figure``, no global pyplot state): equity
curve and drawdown of the holdout backtest (account currency; the walk-forward
out-of-sample curve beside it), feature importance, calibration curve per class and
the confusion matrix, all of the holdout.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.dataset import LABELS, iso_utc
from models.evaluation import reliability
from models.prior import describe_shares
from models.results import SavedModel, TrainingResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PLOTS = ("equity.png", "drawdown.png", "feature_importance.png", "calibration.png", "confusion_matrix.png")


def _times(ms: np.ndarray) -> np.ndarray:
    # Bar starts as datetime64 (UTC), which matplotlib plots as dates.
    return np.asarray(ms, dtype="datetime64[ms]")


def _new_figure(width: float, height: float) -> Figure:
    # matplotlib takes seconds to import: only a run that writes a report pays for it.
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def _save(figure: Figure, path: Path) -> None:
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def confusion_matrix(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Return counts: rows are true labels, columns the most probable label."""
    matrix = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    np.add.at(matrix, (labels, probabilities.argmax(axis=1)), 1)
    return matrix


def _equity_plots(directory: Path, result: TrainingResult[Any]) -> None:
    holdout = result.holdout_evaluation.trading.curve
    walk_forward = result.walk_forward.trading.curve
    figure = _new_figure(9, 4)
    axes = figure.subplots()
    axes.plot(_times(walk_forward["bar_start_ms"].to_numpy()), walk_forward["equity_account"], label="walk-forward")
    axes.plot(_times(holdout["bar_start_ms"].to_numpy()), holdout["equity_account"], label="holdout")
    axes.set_title("Equity (account currency, spread costs included)")
    axes.legend()
    _save(figure, directory / "equity.png")
    figure = _new_figure(9, 3)
    axes = figure.subplots()
    axes.fill_between(_times(holdout["bar_start_ms"].to_numpy()), -holdout["drawdown_account"], color="tab:red")
    axes.set_title("Holdout drawdown (account currency)")
    _save(figure, directory / "drawdown.png")


def _model_plots(directory: Path, result: TrainingResult[Any]) -> None:
    importance = sorted(result.feature_importance.items(), key=lambda item: item[1])
    figure = _new_figure(7, max(3.0, 0.25 * len(importance)))
    axes = figure.subplots()
    axes.barh([name for name, _ in importance], [value for _, value in importance])
    axes.set_title("Feature importance")
    _save(figure, directory / "feature_importance.png")

    labels, probabilities = result.holdout.labels, result.holdout_probabilities
    figure = _new_figure(5, 5)
    axes = figure.subplots()
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect")
    for index in range(len(LABELS)):
        curve = reliability(labels, probabilities, index)
        axes.plot(curve.predicted, curve.observed, marker="o", label=f"{curve.label} (ECE {curve.error:.3f})")
    axes.set_xlabel("predicted probability")
    axes.set_ylabel("observed frequency")
    axes.set_title("Calibration (holdout)")
    axes.legend()
    _save(figure, directory / "calibration.png")

    matrix = confusion_matrix(labels, probabilities)
    figure = _new_figure(4.5, 4)
    axes = figure.subplots()
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(LABELS)), LABELS)
    axes.set_yticks(range(len(LABELS)), LABELS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(column, row, str(count), ha="center", va="center")
    axes.set_title("Confusion matrix (holdout)")
    _save(figure, directory / "confusion_matrix.png")


def _table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _figure(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _shares(result: TrainingResult[Any]) -> str:
    return describe_shares(result.class_frequencies) if result.class_frequencies is not None else "not recorded"


def _edge(metrics: dict[str, float]) -> str:
    # The "no edge" verdict of the holdout: is the log loss below what predicting the training shares scores?
    if "holdout_prior_log_loss" not in metrics:
        return "not measured"
    loss, prior = metrics["holdout_log_loss"], metrics["holdout_prior_log_loss"]
    verdict = "below it" if loss < prior else "not below it: no edge over the label frequencies"
    return f"holdout log loss {loss:.5f} vs the prior's {prior:.5f}: {verdict}"


def write_report(directory: Path, result: TrainingResult[Any], saved: SavedModel) -> Path:
    """Write ``report.html`` and its plots into ``directory``; return the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    _equity_plots(directory, result)
    _model_plots(directory, result)
    metadata = saved.metadata
    holdout, walk_forward = result.holdout_evaluation.as_dict(""), result.walk_forward.as_dict("")
    summary = [(name, _figure(value), _figure(walk_forward.get(name, ""))) for name, value in holdout.items()]
    metrics = result.metrics()
    if "holdout_prior_log_loss" in metrics:  # what no edge scores: the training labels' shares on every row
        summary.insert(
            2,
            (
                "prior_log_loss (class frequencies)",
                _figure(metrics["holdout_prior_log_loss"]),
                _figure(metrics.get("wf_prior_log_loss", "")),
            ),
        )
    folds = [
        (
            str(fold.index),
            str(fold.train_rows),
            str(fold.test_rows),
            _figure(fold.evaluation.metrics.log_loss),
            _figure(fold.evaluation.metrics.accuracy),
            _figure(float(fold.evaluation.trading.pnl_account)),
        )
        for fold in result.folds
    ]
    facts = [
        ("model", f"{saved.model_id} ({saved.framework})"),
        ("artifact sha256", saved.sha256),
        ("symbols / timeframe", f"{', '.join(metadata['symbols'])} / {metadata['timeframe']}"),
        ("data range", " .. ".join(iso_utc(ms) for ms in metadata["data_range_ms"])),
        ("holdout range", " .. ".join(iso_utc(ms) for ms in metadata["holdout_range_ms"])),
        ("label", metadata["label_definition"]),
        ("training class shares", _shares(result)),
        ("edge over the class-frequency prior", _edge(metrics)),
        ("feature schema", metadata["schema_hash"]),
        ("ONNX parity (max |diff|)", f"{metadata['parity_max_abs_diff']:.3g}"),
        ("libraries", ", ".join(f"{name} {version}" for name, version in metadata["library_versions"].items())),
    ]
    images = "".join(f'<p><img src="{name}" alt="{name}"></p>' for name in PLOTS)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(saved.model_id)} training report</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} td:first-child{{text-align:left}}</style></head>
<body><h1>{html.escape(saved.model_id)}: training report</h1>
{_table(facts, ("fact", "value"))}
<h2>Metrics</h2>{_table(summary, ("metric", "holdout", "walk-forward (out of sample)"))}
<h2>Walk-forward folds ({html.escape(metadata["fold_scheme"])})</h2>
{_table(folds, ("fold", "train rows", "test rows", "log loss", "accuracy", "P&L (account)"))}
<h2>Plots</h2>{images}
</body></html>
"""
    path = directory / "report.html"
    path.write_text(page)
    return path
