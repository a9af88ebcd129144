"""The Dagster section, and the time the daily reports run."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from tickwave.config.base import HH_MM, Section

# The URL schemes SQLAlchemy (under dagster-postgres) accepts for PostgreSQL through psycopg2.
POSTGRES_SCHEMES = frozenset({"postgresql", "postgresql+psycopg2"})

# When the daily compliance reports of the previous day run (UTC, HH:MM; Dagster's
# compliance_reports_daily schedule). A due time must come after it, or every day is late.
REPORTS_SCHEDULE_UTC = "00:30"


def after_the_reports_schedule(value: str) -> str:
    """Refuse a due time at or before the reports' schedule: every day would be late."""
    # HH:MM strings (the fields' pattern) order as times do.
    if value <= REPORTS_SCHEDULE_UTC:
        raise ValueError(
            f"due at {value} UTC, not after the daily reports' schedule at {REPORTS_SCHEDULE_UTC} UTC "
            "(compliance_reports_daily): every day's reports would be reported late"
        )
    return value


def a_postgres_url(value: SecretStr | None) -> SecretStr | None:
    """Refuse a URL that is not PostgreSQL's, without echoing it (it holds a password)."""
    if value is not None and urlsplit(value.get_secret_value()).scheme not in POSTGRES_SCHEMES:
        raise ValueError("not a PostgreSQL URL; expected postgresql://user:password@host:port/database")
    return value


class OrchestrationSettings(Section):
    """Dagster (``tickwave orchestrate``): webserver and daemon, their instance under the state dir."""

    enabled: bool = Field(default=True, description="`tickwave up` starts the Dagster webserver and daemon")
    port: int = Field(default=13000, ge=0, le=65535, description="Dagster UI / GraphQL port on 127.0.0.1 (0 = free)")
    read_only: bool = Field(
        default=True,
        description="the Dagster UI and GraphQL only read (dagster-webserver --read-only): every local account reaches "
        "that port, so no launch, schedule or sensor toggle, run termination or deletion there; jobs are launched "
        "by the owner's `dagster job launch` (orchestration/README.md). false: the full UI, for a host of one user or "
        "behind an authenticating proxy (docs/security.md)",
    )
    start_timeout_s: float = Field(default=180.0, gt=0, description="how long `up` waits for the Dagster UI")
    schedules_enabled: bool = Field(
        default=True,
        description="the schedules and the sensors that launch runs start RUNNING on a fresh Dagster instance "
        "(false: STOPPED, for those who schedule elsewhere; a toggle in the UI is kept by the instance and wins)",
    )
    postgres_url: SecretStr | None = Field(
        default=None,
        description="Dagster's run, event-log and schedule storage on PostgreSQL (dagster-postgres): "
        "postgresql://user:password@host:port/database (secret: passed to Dagster in its environment only); "
        "unset: SQLite under the state dir",
    )
    daemon_memory_limit_mb: int = Field(
        default=1024,
        ge=0,
        description="the Dagster daemon is restarted (SIGTERM, then started again) once its memory passes this "
        "(proportional set size, MB; looked at each minute; 0: never): Dagster's daemon grows for as long as it runs",
    )
    late_reports_sensor_utc: str = Field(
        default="01:00",
        pattern=HH_MM,
        description="Dagster sensor: yesterday's compliance reports are late after this time (UTC): a report_late "
        f"service event (after the reports' schedule, {REPORTS_SCHEDULE_UTC}; the Grafana alert waits until "
        "dashboards.missing_report_alert_utc)",
    )

    _reports_due_after_schedule = field_validator("late_reports_sensor_utc")(after_the_reports_schedule)
    _postgres_url_is_postgres = field_validator("postgres_url")(a_postgres_url)
