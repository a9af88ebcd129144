"""The direction models section."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tickwave.config.base import Section
from tickwave.timeframes import canonical_timeframe

DEFAULT_MODEL_IDS = {"xgboost": "xgb_direction", "lightgbm": "lgbm_direction", "ensemble": "ensemble_direction"}


class ModelsSettings(Section):
    """Direction models: dataset, XGBoost hyper-parameters, walk-forward evaluation, export, promotion."""

    model_id: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*$",
        description="registry id of the model `tickwave train` builds and the streams serve (default after "
        "models.framework: xgb_direction, lgbm_direction or ensemble_direction)",
    )
    timeframe: str = Field(
        default="1m", description="bar timeframe trained on (features + bars_<timeframe>; one of streams.timeframes)"
    )
    framework: Literal["xgboost", "lightgbm", "ensemble"] = Field(
        default="xgboost",
        description="which model `tickwave train` and the training job fit (xgboost, lightgbm, ensemble)",
    )

    horizon_bars: int = Field(default=5, ge=1, description="label: direction of the mid close over this many bars")
    dead_zone_bps: float = Field(default=1.0, ge=0, description="label: moves within this many bps are flat")
    min_rows: int = Field(default=1000, ge=50, description="fewest labelled rows a training run accepts")
    fold_scheme: Literal["expanding", "rolling"] = Field(
        default="expanding", description="walk-forward training windows: expanding or rolling"
    )
    folds: int = Field(default=4, ge=1, description="walk-forward test blocks before the holdout")
    rolling_window_bars: int = Field(default=5000, ge=10, description="training window of the rolling scheme (bars)")
    embargo_bars: int = Field(
        default=10, ge=0, description="bars dropped between training and test data after the purge gap of h bars"
    )
    holdout_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="most recent share of the range held out (report, parity, promotion)"
    )
    n_estimators: int = Field(default=300, ge=1, description="XGBoost: boosting rounds")
    max_depth: int = Field(default=4, ge=1, le=16, description="XGBoost: tree depth")
    learning_rate: float = Field(default=0.05, gt=0, le=1, description="XGBoost: shrinkage (eta)")
    subsample: float = Field(default=0.8, gt=0, le=1, description="XGBoost: row sample per tree")
    colsample_bytree: float = Field(default=0.8, gt=0, le=1, description="XGBoost: feature sample per tree")
    min_child_weight: float = Field(default=1.0, ge=0, description="XGBoost: smallest hessian sum in a leaf")
    reg_lambda: float = Field(default=1.0, ge=0, description="XGBoost: L2 regularisation")
    n_jobs: int = Field(default=2, ge=1, description="XGBoost: training threads")
    seed: int = Field(default=0, ge=0, description="random seed of training")
    parity_tolerance: float = Field(
        default=1e-5, gt=0, description="largest ONNX vs native probability difference on the holdout"
    )
    promotion_margin: float = Field(
        default=0.005, ge=0, lt=1, description="relative holdout log-loss gain a candidate needs over the champion"
    )
    prior_margin: float = Field(
        default=0.0,
        ge=-1,
        lt=1,
        description="promotion: relative holdout log-loss gain a candidate needs over the class-frequency prior "
        "(predicting the training labels' shares for every row; 0: strictly below it; a negative value lets a "
        "model worse than the prior through, as the demo does on its random-walk sample)",
    )
    calibration_bound: float = Field(
        default=0.1, gt=0, le=1, description="largest expected calibration error (any class) a champion may have"
    )
    baselines: tuple[Literal["flat", "last_direction"], ...] = Field(
        default=("flat", "last_direction"),
        description="promotion: holdout P&L after costs must beat each of these simple strategies",
    )
    min_trades: int = Field(default=10, ge=0, description="promotion: fewest holdout trades a candidate must make")
    promotion_min_fold_share: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="promotion: share of the judged folds (each walk-forward test block and the holdout) in which "
        "the candidate's P&L after costs on the execution engine must beat every baseline's (0.6: 3 of the default "
        "4 + 1, a majority that neither the holdout alone nor one lucky stretch can carry)",
    )
    judgement_parallel_rows: int = Field(
        default=20_000,
        ge=0,
        description="promotion: a judged window (walk-forward fold or holdout) of at least this many rows replays "
        "its baselines on the execution engine in worker processes beside the candidate's replay (the same "
        "figures; a worker's start costs about a second, so smaller windows replay one after another)",
    )
    shadow_min_days: float = Field(
        default=0.0,
        ge=0,
        description="promotion of a challenger: days it must have been scored in shadow, and beaten the champion's "
        "live log loss on the same bars, before it may replace it (0: judged on the holdout alone)",
    )
    backtest_lots: float = Field(
        default=1.0, gt=0, description="position size of the backtest (lots; units per lot: the symbol's contract_size)"
    )
    drift_window_hours: float = Field(
        default=24.0, gt=0, description="drift: the live window compared with the champion's training window (hours)"
    )
    drift_psi_threshold: float = Field(
        default=0.25, gt=0, description="drift: a model input whose PSI against training exceeds this has drifted"
    )
    decay_log_loss_ratio: float = Field(
        default=1.25, gt=1, description="decay: live log loss above this multiple of the holdout's has decayed"
    )
    decay_min_rows: int = Field(
        default=200, ge=1, description="decay: fewest labelled live predictions before decay is judged"
    )
    leakage_windows: int = Field(
        default=8, ge=1, description="replay windows per symbol of the point-in-time feature check"
    )
    leakage_tolerance: float = Field(
        default=1e-6, gt=0, description="relative difference allowed between a stored feature and its replay"
    )
    mlflow_tracking_uri: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/?#@]+(/[^\s?#@]*)?$",
        description="MLflow tracking server (http:// or https://, no credentials in it: MLflow's client reads "
        "MLFLOW_TRACKING_USERNAME/PASSWORD or _TOKEN) that mirrors every training run and the champion / "
        "challenger aliases; unset: no tracking. The warehouse's registry stays the record",
    )
    mlflow_experiment: str = Field(
        default="tickwave", min_length=1, max_length=200, description="MLflow experiment the training runs go to"
    )
    mlflow_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=120,
        description="bound of each MLflow request (no retries): an unreachable server costs training this long, "
        "then a warning",
    )

    @field_validator("timeframe")
    @classmethod
    def _timeframe_stored(cls, value: str) -> str:
        return canonical_timeframe(value)

    @property
    def registry_id(self) -> str:
        """The model id: ``model_id`` when set, else the default of ``framework``'s kind (``lgbm_direction``...)."""
        return self.model_id or DEFAULT_MODEL_IDS[self.framework]
