"""The root settings object and where its sources are read."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from tickwave.config.base import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, ENV_PREFIX
from tickwave.config.clickhouse import ClickHouseSettings
from tickwave.config.dashboards import DashboardsSettings
from tickwave.config.environment import EnvironmentSource
from tickwave.config.execution import ExecutionSettings
from tickwave.config.ingest import IngestSettings
from tickwave.config.kafka import KafkaSettings
from tickwave.config.market import MarketSettings
from tickwave.config.metrics import MetricsSettings
from tickwave.config.models import ModelsSettings
from tickwave.config.mt5 import MT5Settings
from tickwave.config.orchestration import OrchestrationSettings
from tickwave.config.retention import RetentionSettings
from tickwave.config.streams import StreamsSettings
from tickwave.config.supervision import SupervisionSettings
from tickwave.config.symbols import SYMBOL_NAME, SymbolSpec, default_symbols
from tickwave.errors import ConfigurationError
from tickwave.timeframes import SessionAlignment


class Settings(BaseSettings):
    """Everything a Tickwave process is configured with; frozen after loading."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
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
    market: MarketSettings = MarketSettings()
    execution: ExecutionSettings = ExecutionSettings()
    streams: StreamsSettings = StreamsSettings()
    models: ModelsSettings = ModelsSettings()
    orchestration: OrchestrationSettings = OrchestrationSettings()
    dashboards: DashboardsSettings = DashboardsSettings()
    supervision: SupervisionSettings = SupervisionSettings()
    metrics: MetricsSettings = MetricsSettings()
    retention: RetentionSettings = RetentionSettings()
    symbols: dict[str, SymbolSpec] = Field(
        default_factory=default_symbols,
        description="symbol registry, one [symbols.NAME] table each with digits and tick_size "
        "(a configured table replaces the built-in FX majors and XAUUSD); optional instrument facts and "
        "plausibility bounds of its ticks: price_min, price_max, tick_volume_max (tickwave/instruments.py)",
    )

    @field_validator("symbols")
    @classmethod
    def _symbol_names_valid(cls, value: dict[str, SymbolSpec]) -> dict[str, SymbolSpec]:
        bad = [name for name in value if not SYMBOL_NAME.match(name)]
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
        """Read overrides, then the environment (by the table of keys), then the TOML file (no dotenv)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, EnvironmentSource(settings_cls)]
        toml_file = config_file()
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @property
    def bar_alignment(self) -> SessionAlignment | None:
        """Where H4 and D1 bars start: the rollover (``streams.bar_alignment``), or None for UTC."""
        if self.streams.bar_alignment == "utc":
            return None
        return SessionAlignment.at(self.market.timezone, self.market.rollover_time)

    @property
    def state_path(self) -> Path:
        """Return the absolute state directory."""
        return self.state_dir.expanduser().resolve()


def config_file() -> Path | None:
    """Return the TOML file to read: ``$TICKWAVE_CONFIG`` (which must exist), else ``./tickwave.toml`` if present."""
    explicit = os.environ.get(CONFIG_FILE_ENV)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigurationError(f"{CONFIG_FILE_ENV}={explicit}: no such file")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None
