"""The service supervisor section."""

from __future__ import annotations

from pydantic import Field

from tickwave.config.base import Section


class SupervisionSettings(Section):
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
        default=30.0,
        ge=0,
        description="a running service whose health report is stale (hung) this long is "
        "stopped and restarted like a crash (s; 0: never)",
    )
    degraded_restart_s: float = Field(
        default=0.0,
        ge=0,
        description="a running service that reports problems this long is restarted (s; 0: "
        "never: a degraded service usually waits on a dependency, which is restarted itself)",
    )
    stop_grace_s: float = Field(
        default=5.0, gt=0, description="SIGTERM to SIGKILL when the supervisor stops a hung or degraded service (s)"
    )
    disk_free_alert_pct: float = Field(
        default=10.0,
        ge=0,
        le=100,
        description="free disk under this percent of a volume holding the data (Kafka's, "
        "the warehouse's, the journal's) is `disk low` in `tickwave status` and fires the ops board's alert",
    )
