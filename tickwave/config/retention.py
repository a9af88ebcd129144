"""The retention section: how long each table, topic, report folder and Dagster run is kept.

The defaults are the retention table (``adapters/retention.py``, docs/operations.md); these keys override it.
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from tickwave.config.base import Section

# Five years, leap days included: MiFID II Art. 16(6) and 25(1), Delegated Regulation (EU) 2017/565 Art. 72-76.
REGULATORY_MINIMUM_DAYS = 1827
_MINIMUM = f"at least {REGULATORY_MINIMUM_DAYS}: five years, MiFID II"
SERVICE_LOG_GENERATIONS = 3  # rolled files the supervisor keeps of each service log


class RetentionSettings(Section):
    """How long data is kept; compliance records at least the regulatory minimum unless explicitly allowed."""

    compliance_days: int = Field(
        default=REGULATORY_MINIMUM_DAYS,
        ge=1,
        description="days the compliance tables (orders, order_events, fills, risk_events, signals) keep a row "
        f"({_MINIMUM}; docs/operations.md#retention)",
    )
    allow_short_compliance: bool = Field(
        default=False, description=f"accept compliance tables and reports kept under {REGULATORY_MINIMUM_DAYS} days"
    )
    table_days: dict[str, int] = Field(
        default_factory=dict, description="days a warehouse table keeps a row, by table (0: forever), over the defaults"
    )
    topic_retention_ms: dict[str, int] = Field(
        default_factory=dict, description="Kafka retention.ms by topic base name (-1: no time limit), over the defaults"
    )
    topic_retention_bytes: dict[str, int] = Field(
        default_factory=dict, description="Kafka retention.bytes by topic, per partition (-1: no limit), over defaults"
    )
    reports_days: int = Field(
        default=REGULATORY_MINIMUM_DAYS,
        ge=1,
        description=f"days a report folder is kept; the weekly maintenance job prunes older ones ({_MINIMUM})",
    )
    dagster_runs_days: int = Field(default=30, ge=1, description="Dagster runs older than this are deleted weekly")
    service_log_mb: int = Field(
        default=64,
        ge=1,
        description="MB at which the supervisor rolls a service log "
        f"(`logs/<name>.log`) to `.log.1`; {SERVICE_LOG_GENERATIONS} rolled kept",
    )

    @model_validator(mode="after")
    def _regulatory_minimum(self) -> Self:
        days = {"compliance_days": self.compliance_days, "reports_days": self.reports_days}
        short = [f"{key} = {value}" for key, value in days.items() if value < REGULATORY_MINIMUM_DAYS]
        if short and not self.allow_short_compliance:
            raise ValueError(
                f"{', '.join(short)}: under the regulatory minimum of {REGULATORY_MINIMUM_DAYS} days "
                "(set allow_short_compliance = true to accept it)"
            )
        return self
