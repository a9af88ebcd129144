"""``tickwave train`` and ``tickwave models list|show|promote|rollback|shadow|compare``: the registry from the shell.

The models component (XGBoost, ONNX, pandas, matplotlib) is imported inside the
commands, so ``tickwave --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from app.cli.common import console, err_console, exit_on_tickwave_error, settings_or_exit
from app.views import comparison_table, figure
from models.requesters import by_command
from tickwave.config import ModelsSettings, Settings

if TYPE_CHECKING:
    from rich.console import Console

    from models.registry import ModelRegistry, PromotionDecision, RegistryEntry

app = typer.Typer(
    help="The model registry: list, show, promote, roll back, shadow and compare models.", no_args_is_help=True
)

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
KEY_METRICS = (
    ("holdout_log_loss", "log loss"),
    ("holdout_prior_log_loss", "prior log loss"),
    ("holdout_auc", "AUC"),
    ("holdout_accuracy", "accuracy"),
    ("holdout_brier", "Brier"),
    ("holdout_precision", "precision"),
    ("holdout_recall", "recall"),
    ("holdout_pnl_pips", "P&L pips"),
    ("holdout_pnl_account", "P&L USD"),
    ("holdout_sharpe", "Sharpe"),
    ("holdout_max_drawdown_account", "max DD USD"),
)
ModelIdOption = Annotated[
    str | None,
    typer.Option(
        "--model-id",
        help="the model id (default: models.model_id, else xgb_direction, lgbm_direction or "
        "ensemble_direction after the model's kind)",
    ),
]


def _utc_ms(moment: datetime) -> int:
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(aware.timestamp() * 1000)


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _print_decision(decision: PromotionDecision, baselines: tuple[str, ...]) -> None:
    for note in decision.notes:
        console.print(f"  note: {note}")
    for failure in decision.failures:
        console.print(f"  [red]failed[/]: {failure}")
    _print_figures(decision.figures, baselines)


def _print_figures(figures: dict[str, float], baselines: tuple[str, ...], out: Console | None = None) -> None:
    # The decision's figures, the per-fold ones as a table (P&L / trades / hit rate / max drawdown per strategy).
    from models.fold_figures import folds_table, judged_folds

    out = out or console
    for name, value in figures.items():
        if not name.startswith("fold_"):
            out.print(f"  {name}: {value:.6g}")
    for line in folds_table(judged_folds(figures, baselines)):
        out.print(f"  {line}", markup=False, highlight=False)


def train(
    symbols: Annotated[str, typer.Option("--symbols", help="comma-separated symbols, e.g. EURUSD,USDJPY")],
    start: Annotated[datetime, typer.Option("--from", formats=DATE_FORMATS, help="first bar (UTC, inclusive)")],
    end: Annotated[datetime, typer.Option("--to", formats=DATE_FORMATS, help="end of the range (UTC, exclusive)")],
    model_id: ModelIdOption = None,
    promote: Annotated[bool, typer.Option(help="try to promote the new version (the promotion rules apply)")] = True,
    model: Annotated[
        str | None, typer.Option("--model", help="xgboost, lightgbm or ensemble (default: models.framework)")
    ] = None,
) -> None:
    """Train a model on the warehouse's features, evaluate it walk-forward, export it and register it."""
    settings = settings_or_exit()
    if model_id:
        settings = _with_model_id(settings, model_id)
    if model:
        settings = _with_models(settings, framework=model)
    names = [symbol.strip() for symbol in symbols.split(",") if symbol.strip()]
    with exit_on_tickwave_error():
        from models.pipeline import train_model

        outcome = train_model(settings, names, (_utc_ms(start), _utc_ms(end)), by_command("train"), promote=promote)
    entry, result = outcome.entry, outcome.result
    table = Table("figure", "holdout", "walk-forward")
    metrics = entry.metrics
    for key, label in KEY_METRICS:
        table.add_row(label, figure(metrics.get(key)), figure(metrics.get(key.replace("holdout_", "wf_"))))
    console.print(table)
    console.print(
        f"{entry.name}: {entry.stage}; {len(result.dataset)} rows, {len(result.folds)} folds, "
        f"trained in {result.training_seconds:.1f} s"
    )
    store_root = settings.state_path / "models"
    console.print(f"artifact: {store_root / (entry.artifact_sha256 + '.onnx')}")
    console.print(f"report:   {store_root / (entry.artifact_sha256 + '.report') / 'report.html'}")
    if outcome.tracking is not None:
        runs = ", ".join(outcome.tracking.runs.values()) or "no new run"
        console.print(f"MLflow:   {runs}" if outcome.tracking.is_mirrored else f"MLflow:   {outcome.tracking.failure}")
    if outcome.decision is not None:
        console.print("promoted to champion" if outcome.decision.is_promoted else "not promoted:")
        _print_decision(outcome.decision, settings.models.baselines)


@contextmanager
def _opened_registry(settings: Settings) -> Iterator[ModelRegistry]:
    # The registry for one command; a TickwaveError inside becomes one red line and exit code 1.
    from models.registry import ModelRegistry

    with exit_on_tickwave_error():
        registry = ModelRegistry(settings)
        try:
            yield registry
        finally:
            registry.close()


def _with_model_id(settings: Settings, model_id: str) -> Settings:
    return _with_models(settings, model_id=model_id)


def _with_models(settings: Settings, **changes: str) -> Settings:
    # Validated like the configuration file: a wrong value exits with code 2 and says why.
    try:
        models = ModelsSettings.model_validate({**settings.models.model_dump(), **changes})
    except ValueError as exc:
        err_console.print(f"[bold red]configuration error[/]: {exc}")
        raise typer.Exit(2) from exc
    return settings.model_copy(update={"models": models})


@app.command("list")
def list_models(
    model_id: ModelIdOption = None,
    every_model: Annotated[bool, typer.Option("--all", help="list every model id")] = False,
) -> None:
    """List the registered versions with their key holdout metrics: a model id's, and the challengers of its slots."""
    settings = settings_or_exit()
    name = model_id or settings.models.registry_id
    with _opened_registry(settings) as registry:
        entries = [entry for entry in registry.entries() if every_model or name in (entry.model_id, entry.slot)]
    table = Table(
        "model",
        "version",
        "kind",
        "stage",
        "slot",
        "created",
        "data range",
        *(label for _, label in KEY_METRICS[:3]),
        "P&L USD",
        "Sharpe",
        "changed by",
    )
    for entry in entries:
        stage = f"[bold green]{entry.stage}[/]" if entry.stage == "champion" else entry.stage
        table.add_row(
            entry.model_id,
            str(entry.model_version),
            entry.framework,
            stage,
            entry.slot,
            _time(entry.created_at_ms),
            f"{_time(entry.trained_from_ms)} .. {_time(entry.trained_to_ms)}",
            *(figure(entry.metrics.get(key)) for key, _ in KEY_METRICS[:3]),
            figure(entry.metrics.get("holdout_pnl_account")),
            figure(entry.metrics.get("holdout_sharpe")),
            entry.stage_changed_by,
        )
    console.print(table if entries else "no registered models")


@app.command("show")
def show(version: Annotated[int, typer.Argument(help="the version")], model_id: ModelIdOption = None) -> None:
    """Show one version: its row, metrics, parameters, artifact, report and audit trail."""
    settings = settings_or_exit()
    name = model_id or settings.models.registry_id
    with _opened_registry(settings) as registry:
        entry = registry.entry(name, version)
        events = [event for event in registry.events(name) if event.model_version == version]
        store = registry.store
    _print_entry(
        entry, str(store.onnx_path(entry.artifact_sha256)), str(store.report_dir(entry.artifact_sha256) / "report.html")
    )
    trail = Table("when", "action", "from", "to", "by", "reason")
    for event in events:
        trail.add_row(
            _time(event.occurred_at_ms), event.action, event.from_stage, event.to_stage, event.actor, event.reason
        )
    console.print(trail)


def _print_entry(entry: RegistryEntry, artifact: str, report: str) -> None:
    facts = Table("field", "value", show_header=False)
    for label, value in (
        ("model", entry.name),
        ("stage", entry.stage),
        ("slot", entry.slot),
        ("framework", entry.framework),
        ("created", _time(entry.created_at_ms)),
        ("data range", f"{_time(entry.trained_from_ms)} .. {_time(entry.trained_to_ms)}"),
        ("feature schema", entry.feature_schema_hash),
        ("artifact sha256", entry.artifact_sha256),
        ("artifact", artifact),
        ("report", report),
        ("last change", f"{entry.stage_changed_by}: {entry.stage_reason}"),
    ):
        facts.add_row(label, value)
    console.print(facts)
    metrics = Table("metric", "value")
    for key, metric in sorted(entry.metrics.items()):
        metrics.add_row(key, f"{metric:.6g}")
    console.print(metrics)
    params = Table("parameter", "value")
    for key, setting in sorted(entry.params.items()):
        params.add_row(key, setting)
    console.print(params)


@app.command("promote")
def promote(
    version: Annotated[int, typer.Argument(help="the version to promote")], model_id: ModelIdOption = None
) -> None:
    """Make a version champion if it beats the champion on its holdout by the margin and passes the sanity checks."""
    settings = settings_or_exit()
    from models.errors import PromotionRefused

    name = model_id or settings.models.registry_id
    with _opened_registry(settings) as registry:
        try:
            decision = registry.promote(name, version, by_command("models promote"))
            entry = registry.entry(name, version)
        except PromotionRefused as refused:
            err_console.print(f"[bold red]not promoted[/]: {name} v{version}")
            for note in refused.notes:
                err_console.print(f"  note: {note}")
            _print_figures(refused.figures, settings.models.baselines, err_console)
            raise
    console.print(f"{entry.name} is the champion of slot {entry.slot} on {entry.timeframe} bars")
    _print_decision(decision, settings.models.baselines)


@app.command("rollback")
def rollback(
    model_id: ModelIdOption = None,
    reason: Annotated[str, typer.Option(help="why (recorded in the audit trail)")] = "manual rollback",
) -> None:
    """Retire the champion and restore the previous champion."""
    settings = settings_or_exit()
    name = model_id or settings.models.registry_id
    with _opened_registry(settings) as registry:
        restored = registry.rollback(name, by_command("models rollback"), reason)
    console.print(f"rolled back: {restored.name} is the champion again")


@app.command("shadow")
def shadow(
    version: Annotated[int, typer.Argument(help="the version to score in shadow")],
    model_id: ModelIdOption = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            help="the model id whose champion it challenges (default: its own model id's); "
            "timeframe, feature schema and labels must match",
        ),
    ] = None,
) -> None:
    """Make a version a challenger: the dataflow scores it beside its timeframe's champion and never trades it."""
    settings = settings_or_exit()
    name = model_id or settings.models.registry_id
    with _opened_registry(settings) as registry:
        entry = registry.shadow(name, version, by_command("models shadow"), against)
        champion = registry.champion(entry.slot, entry.timeframe)
    beside = f"beside champion {champion.name}" if champion is not None else f"in slot {entry.slot} (no champion yet)"
    console.print(
        f"{entry.name} is a challenger on {entry.timeframe} bars {beside}: the streams score it in shadow "
        "(within streams.model_refresh_s); `tickwave models compare` shows it beside the champion; "
        f"`tickwave models promote {entry.model_version} --model-id {entry.model_id}` makes it the champion "
        "of that slot"
    )


@app.command("compare")
def compare(
    model_id: Annotated[
        str | None,
        typer.Option(
            "--model-id", help="the slots of one model id, champion and challengers of every id (default: every slot)"
        ),
    ] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", help="one timeframe, e.g. 1m")] = None,
    days: Annotated[int, typer.Option("--days", min=1, help="the last N UTC days, today included")] = 7,
    daily: Annotated[bool, typer.Option("--daily", help="one row per day rather than per window")] = False,
) -> None:
    """Compare each slot's champion with its challengers, of any model id, on live data (model_performance_daily)."""
    settings = settings_or_exit()
    from models.shadow import live_performance

    with exit_on_tickwave_error():
        from adapters.warehouse.client import connect

        client = connect(settings)
        try:
            rows = live_performance(client, days, model_id or "", timeframe or "", daily)
        finally:
            client.close()
    if not rows:
        console.print(f"no live predictions in model_performance_daily over the last {days} days")
        return
    console.print(comparison_table(rows, days))


def register(root: typer.Typer) -> None:
    """Add ``train`` to the root command and the ``models`` group."""
    root.command("train")(train)
    root.add_typer(app, name="models")
