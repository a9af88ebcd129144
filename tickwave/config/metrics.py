"""The Prometheus metrics section: each long-running process serves ``/metrics`` on loopback."""

from __future__ import annotations

from pydantic import Field

from tickwave.config.base import Section


class MetricsSettings(Section):
    """Where each process serves its Prometheus metrics (127.0.0.1 only; 0: a free port, kept until `down`)."""

    enabled: bool = Field(default=True, description="every long-running process serves /metrics on 127.0.0.1")
    ingest_port: int = Field(default=0, ge=0, le=65_535, description="`tickwave ingest`'s metrics port (0: a free one)")
    streams_port: int = Field(
        default=0, ge=0, le=65_535, description="the dataflow's metrics port (0: a free one; process N of several: +N)"
    )
    streams_loader_port: int = Field(default=0, ge=0, le=65_535, description="the streams loader's metrics port")
    execution_port: int = Field(default=0, ge=0, le=65_535, description="the execution process's metrics port")
    audit_port: int = Field(default=0, ge=0, le=65_535, description="the audit loader's metrics port")
    warehouse_port: int = Field(default=0, ge=0, le=65_535, description="the embedded warehouse's metrics port")
    supervisor_port: int = Field(default=0, ge=0, le=65_535, description="the supervisor's metrics port")
    orchestration_port: int = Field(
        default=0, ge=0, le=65_535, description="Dagster's run outcomes (served by `tickwave orchestrate`)"
    )
    scrape_interval_s: float = Field(
        default=5.0, gt=0, description="the scrape interval `tickwave up` writes into the Prometheus configuration"
    )

    def port_of(self, service: str) -> int:
        """Return the configured port of ``service`` (``streams-loader``, ``streams-2``...), 0 when none is."""
        base, _, index = service.partition("-")
        if base == "streams" and index.isdigit():
            return self.streams_port + int(index) if self.streams_port else 0
        return int(getattr(self, f"{service.replace('-', '_')}_port", 0))
