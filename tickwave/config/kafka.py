"""The event bus section."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from tickwave.config.base import Section


class KafkaSettings(Section):
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
