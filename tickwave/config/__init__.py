"""Typed, frozen configuration for every Tickwave process.

Sources, highest priority first: keyword overrides (tests), environment variables
``TICKWAVE_<SECTION>_<KEY>`` (``TICKWAVE_<KEY>`` for top-level keys,
``TICKWAVE_EXECUTION_RISK_<KEY>`` in a sub-section), the TOML file (``TICKWAVE_CONFIG`` or
``./tickwave.toml``), then defaults. Load once at the entry point with
:func:`load_settings` and pass the object down; nothing reads the environment at import
time.

Unknown keys (in the file or as ``TICKWAVE_*`` variables) and invalid values fail with
one :class:`~tickwave.errors.ConfigurationError` naming each key and the expected form.

One module per section (``kafka``, ``clickhouse``, ``market``, ``execution``...), the root
object in ``settings``, the variables' names and reader in ``environment``, and loading,
error reports, the reference table and the child-process environment in ``loading``.
"""

from __future__ import annotations

from tickwave.config.base import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, ENV_PREFIX
from tickwave.config.clickhouse import ClickHouseSettings
from tickwave.config.dashboards import DashboardsSettings
from tickwave.config.execution import (
    ControlSettings,
    ExecutionSettings,
    MT5BrokerSettings,
    PaperBrokerSettings,
    ReconciliationSettings,
    RiskSettings,
)
from tickwave.config.ingest import IngestSettings
from tickwave.config.kafka import KafkaSettings
from tickwave.config.loading import (
    known_env_names,
    load_settings,
    masked_settings,
    reference_markdown,
    secret_env_names,
    to_environment,
)
from tickwave.config.market import MarketSettings
from tickwave.config.metrics import MetricsSettings
from tickwave.config.models import DEFAULT_MODEL_IDS, ModelsSettings
from tickwave.config.mt5 import MT5Settings
from tickwave.config.orchestration import REPORTS_SCHEDULE_UTC, OrchestrationSettings
from tickwave.config.retention import REGULATORY_MINIMUM_DAYS, RetentionSettings
from tickwave.config.settings import Settings
from tickwave.config.streams import StreamsSettings
from tickwave.config.supervision import SupervisionSettings
from tickwave.config.symbols import SymbolSpec, default_symbols

__all__ = [
    "CONFIG_FILE_ENV",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_MODEL_IDS",
    "ENV_PREFIX",
    "REGULATORY_MINIMUM_DAYS",
    "REPORTS_SCHEDULE_UTC",
    "ClickHouseSettings",
    "ControlSettings",
    "DashboardsSettings",
    "ExecutionSettings",
    "IngestSettings",
    "KafkaSettings",
    "MT5BrokerSettings",
    "MT5Settings",
    "MarketSettings",
    "MetricsSettings",
    "ModelsSettings",
    "OrchestrationSettings",
    "PaperBrokerSettings",
    "ReconciliationSettings",
    "RetentionSettings",
    "RiskSettings",
    "Settings",
    "StreamsSettings",
    "SupervisionSettings",
    "SymbolSpec",
    "default_symbols",
    "known_env_names",
    "load_settings",
    "masked_settings",
    "reference_markdown",
    "secret_env_names",
    "to_environment",
]
