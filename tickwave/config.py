"""Typed, frozen configuration for every Tickwave process.

Sources, highest priority first: keyword overrides (tests), environment variables
``TICKWAVE_<SECTION>_<KEY>`` (or ``TICKWAVE_<KEY>`` for top-level keys), the TOML file
(``TICKWAVE_CONFIG`` or ``./tickwave.toml``), then defaults. Load once at the entry
point with :func:`load_settings` and pass the object down; nothing reads the
environment at import time.

Unknown keys (in the file or as ``TICKWAVE_*`` variables) and invalid values fail with
one :class:`~tickwave.errors.ConfigurationError` naming each key and the expected form.
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from datetime import date
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from tickwave.errors import ConfigurationError
from tickwave.timeframes import TIMEFRAMES, SessionAlignment, canonical_timeframe, canonical_timeframes
from tickwave.timezones import parse_timezone

ENV_PREFIX = "TICKWAVE_"
CONFIG_FILE_ENV = "TICKWAVE_CONFIG"
DEFAULT_CONFIG_FILE = "tickwave.toml"
_SYMBOL_NAME = re.compile(r"^[A-Za-z0-9._#\-]{1,32}$")  # as tickwave.contracts.Symbol


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    """The event bus: an external cluster, or the embedded single-node Kafka."""

    bootstrap: str | None = Field(
        default=None,
        description="bootstrap servers of an external Kafka/Redpanda; when set, nothing is started",
    )
    port: int = Field(default=19092, ge=0, le=65535, description="embedded broker port (0 = pick a free one)")
    controller_port: int = Field(
        default=19093, ge=0, le=65535, description="embedded KRaft controller port (0 = pick a free one)"
    )
    heap_mb: int = Field(default=512, ge=128, description="embedded broker JVM heap (MB)")
    version: str = Field(default="4.1.1", description="Apache Kafka version fetched from Maven Central")
    jars_dir: Path | None = Field(
        default=None, description="where Kafka's jars are cached (default: ~/.cache/tickwave/kafka-<version>)"
    )
    topic_prefix: str = Field(default="", description="prefix of every topic name (isolates tenants and tests)")
    ticks_partitions: int = Field(
        default=1, ge=1, description="partitions of the ticks topics (at least `streams.processes`; more cost latency)"
    )
    signals_partitions: int = Field(default=1, ge=1, description="partitions of the signals and orders topics")
    start_timeout_s: float = Field(default=90.0, gt=0, description="how long `up` waits for the broker")

    @property
    def is_external(self) -> bool:
        """Return True when a user-provided cluster is configured."""
        return bool(self.bootstrap)


class ClickHouseSettings(_Section):
    """The warehouse: an external ClickHouse server, or the embedded chdb HTTP service."""

    url: str | None = Field(
        default=None, description="URL of an external ClickHouse HTTP interface; when set, nothing is started"
    )
    port: int = Field(default=18123, ge=0, le=65535, description="embedded warehouse HTTP port (0 = pick a free one)")
    database: str = Field(default="tickwave", description="database holding Tickwave's tables")
    user: str = Field(default="tickwave", description="read-write service user")
    password: SecretStr | None = Field(default=None, description="password of the service user (secret)")
    analyst_user: str = Field(default="analyst", description="read-only user for analysts and dashboards")
    analyst_password: SecretStr | None = Field(default=None, description="password of the analyst user (secret)")
    allow_no_password: bool = Field(default=False, description="local-only development: allow users without a password")
    start_timeout_s: float = Field(default=60.0, gt=0, description="how long `up` waits for the warehouse")
    max_request_mb: int = Field(
        default=512, ge=1, description="embedded warehouse: largest request body as sent (decoded: 4x this), MB"
    )
    max_concurrent_queries: int = Field(
        default=16, ge=1, description="embedded warehouse: queries running at once (worker threads)"
    )
    max_sessions: int = Field(default=64, ge=1, description="embedded warehouse: open HTTP sessions per user at most")
    nice: int = Field(
        default=10, ge=0, le=19, description="embedded warehouse: CPU niceness (its bursts yield to the hot path)"
    )
    max_memory_mb: int = Field(
        default=0,
        ge=0,
        description="embedded warehouse: memory the engine may hold in all, past which queries fail "
        "(max_server_memory_usage), MB; 0: half of the machine's",
    )
    session_timeout_s: float = Field(default=60.0, gt=0, description="embedded warehouse: default session idle timeout")
    shutdown_timeout_s: float = Field(
        default=25.0, gt=0, description="embedded warehouse: how long SIGTERM waits for in-flight requests"
    )
    client_compression: Literal["lz4", "zstd", "gzip", "none"] = Field(
        default="lz4", description="compression Tickwave's clients use for requests and responses"
    )
    analyst_max_execution_time_s: int = Field(
        default=60, ge=1, description="embedded warehouse: longest analyst query (max_execution_time), seconds"
    )
    analyst_max_memory_mb: int = Field(
        default=2048, ge=16, description="embedded warehouse: memory one analyst query may use (max_memory_usage), MB"
    )
    analyst_max_result_rows: int = Field(
        default=5_000_000, ge=1, description="embedded warehouse: rows an analyst result may hold (max_result_rows)"
    )
    analyst_max_result_mb: int = Field(
        default=512, ge=1, description="embedded warehouse: size of an analyst result (max_result_bytes), MB"
    )
    analyst_max_concurrent_queries: int = Field(
        default=4, ge=1, description="embedded warehouse: queries one read-only user may run at once"
    )
    confine_engine: bool = Field(
        default=True,
        description="embedded warehouse: Landlock-confine the process to the files it needs and its data dir, "
        "no TCP connection (Linux 5.13+, network 6.7+; else logged)",
    )
    max_failed_logins: int = Field(
        default=10, ge=1, description="embedded warehouse: failed logins per user and address before a lock-out"
    )
    failed_login_window_s: float = Field(
        default=300.0, gt=0, description="embedded warehouse: window of the failed-login count and the lock-out, s"
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description=(
            "embedded warehouse: proxy addresses or networks whose X-Forwarded-For names the client "
            "(JSON list; empty: the TCP peer is the client, forwarded headers are ignored)"
        ),
    )

    @property
    def is_external(self) -> bool:
        """Return True when a user-provided ClickHouse server is configured."""
        return bool(self.url)


class ExecutionSettings(_Section):
    """The execution process: broker choice, sizing, pre-trade risk limits and paper/MT5 details.

    Changing a limit needs a restart or an audited ``set_limit`` control command.
    """

    broker: Literal["paper", "mt5"] = Field(default="paper", description="where orders go: paper or mt5")
    hot_path_client: Literal["confluent", "quixstreams"] = Field(
        default="confluent",
        description="Kafka client of the signal/tick loop (measured in bench/execution.py; see execution/README.md)",
    )
    consumer_group: str = Field(default="tickwave-execution", description="Kafka consumer group of the process")
    instance_id: str = Field(default="execution-1", description="names this process in logs, events and groups")
    allowed_symbols: tuple[str, ...] = Field(
        default=("EURUSD", "GBPUSD", "USDJPY", "USDCHF", "AUDUSD", "XAUUSD"),
        description="symbols the process may trade (JSON list in the environment)",
    )
    market_hours: Literal["fx", "always"] = Field(
        default="fx", description="fx: closed from Friday to Sunday at the rollover (New York time); always: open"
    )
    market_timezone: str = Field(default="America/New_York", description="zone of the market hours and rollover")
    rollover_time: str = Field(
        default="17:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="trading day rollover, HH:MM local"
    )
    market_holidays: tuple[date, ...] = Field(
        default=(), description="closed local dates (JSON list of YYYY-MM-DD in the environment)"
    )
    account_currency: str = Field(default="USD", description="currency of P&L, exposure and the loss limit")

    @field_validator("stop_pips_by_symbol")
    @classmethod
    def _stop_pips_are_distances(cls, value: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for symbol, pips in value.items():
            if not all(math.isfinite(p) and p >= 0 for p in pips):
                raise ValueError(f"{symbol}: stop pips must be finite and >= 0, got {list(pips)}")
        return value

    def stop_pips(self, symbol: str) -> tuple[float, float]:
        """Return the (stop loss, take profit) pips of ``symbol``: its own, else the defaults (0 = off)."""
        return self.stop_pips_by_symbol.get(symbol, (self.stop_loss_pips, self.take_profit_pips))

    @field_validator("market_timezone")
    @classmethod
    def _zone_known(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York)") from exc
        return value

    daily_loss_action: Literal["REDUCING", "HALTED"] = Field(
        default="REDUCING", description="trading state once the day's loss reaches daily_loss_limit"
    )
    max_position_lots: float = Field(default=1.0, gt=0, description="largest absolute position per symbol (lots)")
    max_order_lots: float = Field(default=1.0, gt=0, description="largest single order (lots)")
    lot_step: float = Field(default=0.01, gt=0, description="order sizes are multiples of this (lots)")
    min_strength: float = Field(default=0.0, ge=0, le=1, description="signals weaker than this target flat")
    max_gross_exposure: float = Field(
        default=1_000_000.0, gt=0, description="largest sum of |position| x price x contract size (account ccy)"
    )
    signal_ttl_ms: int = Field(default=5_000, gt=0, description="signals older than this are denied (ms)")
    signal_timeframe: str = Field(
        default="1m",
        pattern=r"^[0-9]+[smhd]$",
        description="bar timeframe whose signals drive each symbol's position (others are denied)",
    )
    signal_timeframes: dict[str, str] = Field(
        default_factory=dict,
        description="per-symbol driving timeframe overriding signal_timeframe (JSON object in the environment)",
    )
    max_tick_age_ms: int = Field(default=60_000, gt=0, description="a latest tick older than this is no price (ms)")
    price_collar_bps: float = Field(
        default=50.0, gt=0, description="deny when the latest spread (or a limit price) is this far from mid (bps)"
    )
    max_orders_per_second: int = Field(default=20, gt=0, description="order rate throttle (orders per second)")
    daily_loss_limit: float = Field(
        default=5_000.0, gt=0, description="day's loss (realised + change of unrealised since the rollover) limit"
    )
    max_consecutive_rejects: int = Field(default=5, gt=0, description="broker rejects in a row that halt trading")
    flash_crash_pct: float = Field(
        default=2.0, gt=0, description="a mid move over this many percent within the window halts the symbol"
    )
    flash_crash_window_ms: int = Field(default=5_000, gt=0, description="the flash-crash window (ms)")
    journal_fsync: bool = Field(
        default=True, description="fsync the journal before each broker call (off only for throwaway tests)"
    )
    paper_slippage_bps: float = Field(default=0.5, ge=0, description="paper fills this much worse than the quote")
    paper_latency_ms: int = Field(default=0, ge=0, description="paper orders fill this long after submission")
    paper_initial_cash: float = Field(default=100_000.0, gt=0, description="paper account starting cash")
    mt5_magic: int = Field(default=770_077, ge=0, description="MT5 magic number marking Tickwave's orders")
    mt5_deviation_points: int = Field(default=20, ge=0, description="MT5 allowed slippage (points)")
    mt5_max_retries: int = Field(default=3, ge=0, description="MT5 retries of a requote or busy answer")
    control_timeout_s: float = Field(default=10.0, gt=0, description="how long the CLI waits for the process to answer")
    stop_loss_pips: float = Field(
        default=0.0, ge=0, description="protective stop this many pips (instrument pip size) from the entry; 0: off"
    )
    take_profit_pips: float = Field(
        default=0.0, ge=0, description="take profit this many pips (instrument pip size) from the entry; 0: off"
    )
    stop_pips_by_symbol: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="per symbol (stop loss, take profit) pips replacing the two above "
        '(JSON object in the environment, e.g. {"XAUUSD": [300, 600]}; 0: off)',
    )
    mt5_server_stops: bool = Field(
        default=True, description="MT5: also set the stops at the trade server (sl/tp), a backstop while down"
    )
    mt5_server_stop_extra_pips: float = Field(
        default=5.0, ge=0, description="MT5: the server's sl/tp are this many pips beyond the engine's (acting first)"
    )
    control_max_age_s: float = Field(
        default=60.0, gt=0, description="a signed control command older (or newer) than this is refused as a replay, s"
    )
    reconcile_every_s: float = Field(
        default=10.0, gt=0, description="reconcile journal and broker this often (and after any broker reject), s"
    )
    reconcile_window_s: float = Field(
        default=86_400.0,
        gt=0,
        description="a periodic reconciliation compares orders created this recently and "
        "every working one (the start compares all), s",
    )


class SymbolSpec(_Section):
    """One tradable symbol: how its prices are quoted."""

    digits: int = Field(ge=0, le=10, description="decimal places of a quote (EURUSD 5, USDJPY 3)")
    tick_size: float = Field(gt=0, description="smallest price step (EURUSD 0.00001)")
    # Instrument facts (tickwave.instruments): left out, they come from known symbols or the name.
    contract_size: float | None = Field(default=None, gt=0, description="units per lot (FX 100000, XAUUSD 100)")
    base: str | None = Field(default=None, description="base currency or asset (EURJPY: EUR)")
    quote: str | None = Field(default=None, description="currency prices and P&L are in (EURJPY: JPY)")
    margin_currency: str | None = Field(default=None, description="currency of the margin (default: base)")
    pip_size: float | None = Field(default=None, gt=0, description="one pip in price units (EURUSD 0.0001)")
    volume_min: float | None = Field(default=None, gt=0, description="smallest order (lots)")
    volume_step: float | None = Field(default=None, gt=0, description="order sizes are multiples of this (lots)")
    volume_max: float | None = Field(default=None, gt=0, description="largest order (lots)")

    @model_validator(mode="after")
    def _tick_size_fits_digits(self) -> SymbolSpec:
        # A tick size finer than the quoted digits could never be observed in a quote.
        if self.tick_size < 10.0**-self.digits * (1 - 1e-9):
            raise ValueError(f"tick_size {self.tick_size} is finer than {self.digits} digits allow")
        return self


def default_symbols() -> dict[str, SymbolSpec]:
    """Return the built-in symbol registry: FX majors and crosses, gold, silver and an index CFD."""
    fx5, fx3 = SymbolSpec(digits=5, tick_size=0.00001), SymbolSpec(digits=3, tick_size=0.001)
    return {
        "EURUSD": fx5, "GBPUSD": fx5, "USDCHF": fx5, "AUDUSD": fx5, "NZDUSD": fx5, "USDCAD": fx5,
        "EURGBP": fx5, "EURCHF": fx5, "USDJPY": fx3, "EURJPY": fx3, "GBPJPY": fx3, "AUDJPY": fx3,
        "XAUUSD": SymbolSpec(digits=2, tick_size=0.01), "XAGUSD": SymbolSpec(digits=3, tick_size=0.001),
        "US500": SymbolSpec(digits=1, tick_size=0.1),
    }  # fmt: skip


class IngestSettings(_Section):
    """Tick ingestion (``tickwave ingest``): validation limits, batching, simulator defaults."""

    max_future_ms: int = Field(
        default=60_000, ge=0, description="ticks stamped later than now + this (ms) go to the DLQ as future_timestamp"
    )
    batch_ticks: int = Field(default=65_536, ge=1, description="rows read per batch from replay files")
    stats_interval_s: float = Field(default=10.0, gt=0, description="how often counters are logged (s)")
    flush_timeout_s: float = Field(default=30.0, gt=0, description="how long a stop waits for Kafka to acknowledge")
    sim_symbols: list[str] = Field(
        default=["EURUSD", "GBPUSD", "USDJPY", "XAUUSD"], description="symbols the simulator quotes"
    )
    sim_rate: float = Field(default=20.0, gt=0, description="simulator ticks per second, all symbols together")
    sim_seed: int = Field(default=7, description="simulator random seed (same seed, same market)")


class MT5Settings(_Section):
    """A MetaTrader 5 terminal (Windows only) polled for live ticks."""

    login: int | None = Field(default=None, description="trading account number (None: the terminal's current one)")
    password: SecretStr | None = Field(default=None, description="account password (secret)")
    server: str | None = Field(default=None, description="trade server name as shown in the terminal")
    path: Path | None = Field(default=None, description="terminal64.exe to start or attach to (None: auto-detect)")
    portable: bool = Field(default=False, description="start the terminal in portable mode")
    timeout_ms: int = Field(default=60_000, ge=1, description="how long initialize/login may take (ms)")
    server_timezone: str = Field(
        default="UTC",
        description='time zone of the broker\'s server clock: an IANA name ("Europe/Athens") or "+02:00"',
    )
    symbols: list[str] = Field(default=["EURUSD"], description="symbols to poll")
    poll_interval_ms: int = Field(default=100, ge=1, description="pause between polls of the terminal (ms)")
    window_s: int = Field(default=60, ge=1, description="seconds of ticks requested per copy_ticks_range call")
    backfill_s: int = Field(default=0, ge=0, description="seconds of history sent at start before live ticks")
    reconnect_initial_s: float = Field(default=1.0, gt=0, description="first pause before reconnecting (s)")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="longest pause between reconnect attempts (s)")

    @field_validator("server_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        parse_timezone(value)  # raises ValueError naming the accepted forms
        return value


class StreamsSettings(_Section):
    """The Bytewax dataflow: bars, features, inference and signals."""

    timeframes: tuple[str, ...] = Field(
        default=("1s", "1m"),
        description=f"bar timeframes, each stored in bars_<timeframe> (JSON list of {', '.join(TIMEFRAMES)}; "
        "MT5's M1, H4, D1... accepted)",
    )
    bar_alignment: Literal["rollover", "utc"] = Field(
        default="rollover",
        description="where H4 and D1 bars start: the trading day's rollover (execution.rollover_time in "
        "execution.market_timezone) or UTC midnight",
    )

    @field_validator("timeframes")
    @classmethod
    def _timeframes_stored(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return canonical_timeframes(value)  # ValueError naming what the warehouse stores

    late_wait_ms: int = Field(default=2000, ge=0, description="how long a window waits for late ticks (ms)")
    close_on_wall_clock: bool = Field(
        default=True, description="close a quiet symbol's bars as wall-clock time passes (see idle_close_ms)"
    )
    idle_close_ms: int = Field(
        default=3000,
        ge=0,
        description="after this long without ticks (wall clock), a symbol's event time advances with the wall clock",
    )
    max_future_ms: int = Field(default=5000, ge=0, description="reject ticks this far ahead of the wall clock (ms)")
    spike_threshold_bps: float = Field(default=300.0, gt=0, description="reject a mid this far from its reference")
    spike_confirm_ticks: int = Field(default=5, ge=1, description="consecutive spikes that confirm a real level shift")
    entry_probability: float = Field(default=0.55, ge=0, le=1, description="probability needed for a long/short signal")
    min_edge: float = Field(default=0.10, ge=0, le=1, description="p(up) - p(down) needed for a long/short signal")
    model_refresh_s: float = Field(default=5.0, gt=0, description="how often the flow checks for a new champion model")
    processes: int = Field(default=1, ge=1, description="Bytewax processes (each takes a share of the partitions)")
    # One key per symbol makes the ten symbols that close at a second's boundary run one after another, each
    # with its own model call and produce request; hashed groups make ticks cross between processes, pickled,
    # at half the speed of one process (both measured with bench/streams.py).
    symbol_groups: int = Field(
        default=0,
        ge=0,
        description="state keys of the symbols (each group's closes share one model call and one publish): 0, one "
        "group per process holding the symbols of the ticks partitions it reads, so no tick crosses processes; "
        "N, N groups by a hash of the symbol (fixed for a recovery store)",
    )
    # 30 s, not 5: each snapshot holds the input back ~10 ms (Bytewax's store syncs each commit), and when its phase
    # meets the 1 s bar closes, a 300 s run at 5 s has 16 late seconds in 5 s steps (bench/streams.py); a restart
    # replays at most 30 s of ticks (~1.5 s at the flow's ~100k ticks/s), which the idempotent keys absorb.
    snapshot_interval_s: int = Field(
        default=30, ge=1, description="recovery snapshot (epoch) interval: a restart resumes from the last one (s)"
    )
    loader_nice: int = Field(
        default=10, ge=0, le=19, description="CPU niceness of the streams loader (its bursts yield to the flow)"
    )


DEFAULT_MODEL_IDS = {"xgboost": "xgb_direction", "lightgbm": "lgbm_direction", "ensemble": "ensemble_direction"}


class ModelsSettings(_Section):
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
    calibration_bound: float = Field(
        default=0.1, gt=0, le=1, description="largest expected calibration error (any class) a champion may have"
    )
    baselines: tuple[Literal["flat", "last_direction"], ...] = Field(
        default=("flat", "last_direction"),
        description="promotion: holdout P&L after costs must beat each of these simple strategies",
    )
    min_trades: int = Field(default=10, ge=0, description="promotion: fewest holdout trades a candidate must make")
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

    @field_validator("timeframe")
    @classmethod
    def _timeframe_stored(cls, value: str) -> str:
        return canonical_timeframe(value)

    @property
    def registry_id(self) -> str:
        """The model id: ``model_id`` when set, else the default of ``framework``'s kind (``lgbm_direction``...)."""
        return self.model_id or DEFAULT_MODEL_IDS[self.framework]


# When the daily compliance reports of the previous day run (UTC, HH:MM; Dagster's
# compliance_reports_daily schedule). A due time must come after it, or every day is late.
REPORTS_SCHEDULE_UTC = "00:30"


def _after_the_reports_schedule(value: str) -> str:
    # HH:MM strings (the fields' pattern) order as times do.
    if value <= REPORTS_SCHEDULE_UTC:
        raise ValueError(
            f"due at {value} UTC, not after the daily reports' schedule at {REPORTS_SCHEDULE_UTC} UTC "
            "(compliance_reports_daily): every day's reports would be reported late"
        )
    return value


class OrchestrationSettings(_Section):
    """Dagster (``tickwave orchestrate``): webserver and daemon with a SQLite instance under the state dir."""

    enabled: bool = Field(default=True, description="`tickwave up` starts the Dagster webserver and daemon")
    port: int = Field(default=13000, ge=0, le=65535, description="Dagster UI / GraphQL port on 127.0.0.1 (0 = free)")
    start_timeout_s: float = Field(default=180.0, gt=0, description="how long `up` waits for the Dagster UI")
    schedules_enabled: bool = Field(
        default=True,
        description="the schedules and the sensors that launch runs start RUNNING on a fresh Dagster instance "
        "(false: STOPPED, for those who schedule elsewhere; a toggle in the UI is kept by the instance and wins)",
    )
    reports_due_utc: str = Field(
        default="01:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description="Dagster sensor: yesterday's compliance reports are late after this time (UTC): a report_late "
        f"service event (after the reports' schedule, {REPORTS_SCHEDULE_UTC})",
    )

    _reports_due_after_schedule = field_validator("reports_due_utc")(_after_the_reports_schedule)


class DashboardsSettings(_Section):
    """Grafana boards as code (``tickwave dashboards build | push``): refresh, alert thresholds, contact point."""

    refresh: Literal["1s", "2s", "5s"] = Field(default="5s", description="trader board auto-refresh (1-5 s)")
    folder: str = Field(default="Tickwave", description="Grafana folder the boards and alert rules go into")
    datasource_name: str = Field(default="Tickwave ClickHouse", description="name of the provisioned datasource")
    password_env: str = Field(
        default="CLICKHOUSE_ANALYST_PASSWORD",
        pattern=r"^[A-Z][A-Z0-9_]*$",
        description="environment variable of Grafana's process holding the analyst's password (never written)",
    )
    query_timeout_s: int = Field(
        default=30, ge=1, description="datasource query timeout (max_execution_time; at most the analyst's limit)"
    )
    row_limit: int = Field(
        default=100_000, ge=1, description="datasource row limit (the plugin's `limit` setting; at most the analyst's)"
    )
    webhook_url: str | None = Field(
        default=None, description="alert contact point (webhook URL); unset: alert rules only, no contact point"
    )
    stale_data_s: int = Field(default=60, ge=1, description="alert: no tick for this long in market hours (s)")
    stream_lag_s: int = Field(default=30, ge=1, description="alert: bars reach the warehouse this late (s)")
    quarantine_spike: int = Field(default=100, ge=1, description="alert: quarantined inputs within 5 minutes")
    report_due_utc: str = Field(
        default="06:00",
        pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
        description=f"alert: the daily report is missing after this time (UTC; after {REPORTS_SCHEDULE_UTC})",
    )

    _report_due_after_schedule = field_validator("report_due_utc")(_after_the_reports_schedule)


class SupervisionSettings(_Section):
    """The supervisor `tickwave up` starts: restarts crashed services with backoff, stops on a crash loop."""

    enabled: bool = Field(
        default=True, description="`tickwave up` starts the supervisor that restarts crashed services"
    )
    check_interval_s: float = Field(default=1.0, gt=0, description="how often the supervisor looks at each service (s)")
    backoff_initial_s: float = Field(
        default=1.0, ge=0, description="pause before the first restart (s); doubles each time"
    )
    backoff_max_s: float = Field(default=60.0, gt=0, description="longest pause between restarts (s)")
    max_restarts: int = Field(
        default=5, ge=1, description="crash loop: this many restarts of one service within window_s stop its restarts"
    )
    window_s: float = Field(default=300.0, gt=0, description="the crash-loop window (s)")
    stall_restart_s: float = Field(
        default=30.0, ge=0, description="a running service whose health report is stale (hung) this long is "
        "stopped and restarted like a crash (s; 0: never)",
    )  # fmt: skip
    degraded_restart_s: float = Field(
        default=0.0, ge=0, description="a running service that reports problems this long is restarted (s; 0: "
        "never: a degraded service usually waits on a dependency, which is restarted itself)",
    )  # fmt: skip
    stop_grace_s: float = Field(
        default=5.0, gt=0, description="SIGTERM to SIGKILL when the supervisor stops a hung or degraded service (s)"
    )


class Settings(BaseSettings):
    """Everything a Tickwave process is configured with; frozen after loading."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    state_dir: Path = Field(
        default=Path(".tickwave"), description="holds every service's data, logs, pid and port files"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="log level")
    kafka: KafkaSettings = KafkaSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    ingest: IngestSettings = IngestSettings()
    mt5: MT5Settings = MT5Settings()
    execution: ExecutionSettings = ExecutionSettings()
    streams: StreamsSettings = StreamsSettings()
    models: ModelsSettings = ModelsSettings()
    orchestration: OrchestrationSettings = OrchestrationSettings()
    dashboards: DashboardsSettings = DashboardsSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    symbols: dict[str, SymbolSpec] = Field(
        default_factory=default_symbols,
        description="symbol registry, one [symbols.NAME] table each with digits and tick_size "
        "(a configured table replaces the built-in FX majors and XAUUSD)",
    )

    @field_validator("symbols")
    @classmethod
    def _symbol_names_valid(cls, value: dict[str, SymbolSpec]) -> dict[str, SymbolSpec]:
        bad = [name for name in value if not _SYMBOL_NAME.match(name)]
        if bad:
            raise ValueError(f"invalid symbol names {bad}: 1-32 of A-Z a-z 0-9 . _ # -")
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read overrides, then the environment, then the TOML file (no dotenv)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml_file = _config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def bar_alignment(self) -> SessionAlignment | None:
        """Where H4 and D1 bars start: the rollover (``streams.bar_alignment``), or None for UTC."""
        if self.streams.bar_alignment == "utc":
            return None
        return SessionAlignment.at(self.execution.market_timezone, self.execution.rollover_time)

    @property
    def state_path(self) -> Path:
        """Return the absolute state directory."""
        return self.state_dir.expanduser().resolve()


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"{CONFIG_FILE_ENV}={explicit}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def known_env_names() -> dict[str, str]:
    """Map every accepted ``TICKWAVE_*`` variable to its dotted key (e.g. ``kafka.port``)."""
    names = {CONFIG_FILE_ENV: "(config file path)"}
    for name, field in Settings.model_fields.items():
        names[f"{ENV_PREFIX}{name}".upper()] = name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub in annotation.model_fields:
                names[f"{ENV_PREFIX}{name}_{sub}".upper()] = f"{name}.{sub}"
    return names


def _check_unknown_env(environ: dict[str, str]) -> list[str]:
    known = known_env_names()
    return [
        f"{var}: unknown setting (known: see `tickwave config show` or docs/configuration.md)"
        for var in sorted(environ)
        if var.upper().startswith(ENV_PREFIX) and var.upper() not in known
    ]


def _env_name(loc: tuple[Any, ...]) -> str:
    return (ENV_PREFIX + "_".join(str(part) for part in loc)).upper()


def _describe_error(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"])
    env_name = _env_name(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown setting (in {DEFAULT_CONFIG_FILE} or ${CONFIG_FILE_ENV})"
    expected = _expected_form(error["loc"])
    shown = "***" if _is_secret(error["loc"]) else repr(error.get("input"))
    return f"{location} ({env_name}) = {shown}: {error['msg']}" + (f"; expected {expected}" if expected else "")


def _field_for(loc: tuple[Any, ...]) -> Any:
    model: Any = Settings
    field = None
    for part in loc:
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return field
        field = fields[part]
        model = field.annotation
    return field


def _expected_form(loc: tuple[Any, ...]) -> str:
    field = _field_for(loc)
    if field is None:
        return ""
    annotation = getattr(field.annotation, "__name__", None) or str(field.annotation)
    description = f" ({field.description})" if field.description else ""
    return f"{annotation}{description}".replace("typing.", "")


def _is_secret(loc: tuple[Any, ...]) -> bool:
    field = _field_for(loc)
    return field is not None and "SecretStr" in str(field.annotation)


def _is_structured(annotation: Any) -> bool:
    """Return True for the types pydantic-settings reads from the environment as JSON."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_is_structured(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin in (list, tuple, dict, set, frozenset):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel | list | tuple | dict | set)


def _undecodable_env(environ: dict[str, str]) -> list[str]:
    """Describe each ``TICKWAVE_*`` variable of a structured setting whose value is not JSON."""
    import json

    problems = []
    for variable, key in known_env_names().items():
        value = next((text for name, text in environ.items() if name.upper() == variable), None)
        field = _field_for(tuple(key.split("."))) if variable != CONFIG_FILE_ENV else None
        if value is None or field is None or not _is_structured(field.annotation):
            continue
        try:
            json.loads(value)
        except ValueError:
            shown = "***" if _is_secret(tuple(key.split("."))) else repr(value)
            problems.append(
                f"{key} ({variable}) = {shown}: not valid JSON; expected {_expected_form(tuple(key.split('.')))} "
                f'as JSON, e.g. ["1m", "1h"] for a list or {{"key": value}} for a table'
            )
    return problems


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the configuration once, at a process's entry point.

    Args:
        **overrides: values that win over every other source (used by tests).

    Returns:
        The frozen settings.

    Raises:
        ConfigurationError: naming every unknown or invalid key and its expected form.
    """
    problems = _check_unknown_env(dict(os.environ))
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except SettingsError:
        # pydantic-settings names only the section; find the variables it could not decode.
        problems.extend(_undecodable_env(dict(os.environ)) or ["the environment: a TICKWAVE_* value is not valid JSON"])
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        problems.append(
            f"{_config_file()} ({CONFIG_FILE_ENV} or ./{DEFAULT_CONFIG_FILE}): not a valid TOML file: {exc}"
        )
    except ValidationError as exc:
        for error in exc.errors():
            described = _describe_error(error)
            # An unknown TICKWAVE_* variable is reported once, by its variable name.
            if not any(problem.startswith(_env_name(error["loc"]) + ":") for problem in problems):
                problems.append(described)
    if problems or settings is None:
        raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def masked_settings(settings: Settings) -> dict[str, Any]:
    """Return the effective configuration as plain data with every secret masked."""
    data = settings.model_dump(mode="python")

    def mask(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "********"
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return {key: mask(value) for key, value in data.items()}


def reference_markdown() -> str:
    """Return the configuration table (one row per key) as Markdown, for docs/configuration.md."""
    lines = [
        "| environment variable | `tickwave.toml` key | default | meaning |",
        "|---|---|---|---|",
    ]
    for env_name, key in known_env_names().items():
        if env_name == CONFIG_FILE_ENV:
            continue
        section, _, sub = key.partition(".")
        field = Settings.model_fields[section]
        if sub:
            annotation = field.annotation
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
            field = annotation.model_fields[sub]
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue  # a whole section: its keys have their own rows
        value = field.get_default(call_default_factory=True)
        if isinstance(value, dict):
            value = ", ".join(value)  # a registry (symbols): name its entries
        default = "" if value is None or value == "" else f"`{value}`"
        lines.append(f"| `{env_name}` | `{key}` | {default} | {field.description or ''} |")
    lines.append(f"| `{CONFIG_FILE_ENV}` | | `./{DEFAULT_CONFIG_FILE}` if present | path of the TOML file |")
    return "\n".join(lines) + "\n"


def to_environment(settings: Settings, *, include_secrets: bool = True) -> dict[str, str]:
    """Return ``TICKWAVE_*`` variables that give a child process this exact configuration.

    Used when Tickwave starts its own processes (the dataflow, the execution process), so
    they see what the parent resolved, keyword overrides included. Secrets are passed
    in the child's environment only, never on a command line; with ``include_secrets``
    false they are left out (the warehouse, which receives its passwords by descriptor).
    """
    import json

    environment: dict[str, str] = {}
    plain = settings.model_dump(mode="json")  # nested models and tuples as JSON-ready data

    def put(name: str, value: Any, original: Any) -> None:
        if value is None:
            return
        if isinstance(original, SecretStr):
            if not include_secrets:
                return
            text = original.get_secret_value()  # the JSON dump masks secrets
        elif isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        environment[(ENV_PREFIX + name).upper()] = text

    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            for sub in type(value).model_fields:
                put(f"{name}_{sub}", plain[name][sub], getattr(value, sub))
        else:
            put(name, plain[name], value)
    environment[f"{ENV_PREFIX}STATE_DIR"] = str(settings.state_path)
    return environment
