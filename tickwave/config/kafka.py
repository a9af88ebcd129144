"""The event bus section."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, model_validator

from tickwave.config.base import Section

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
EMBEDDED_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL", "PLAINTEXT")
PASSWORD_MECHANISMS = frozenset({"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"})


class KafkaSettings(Section):
    """The event bus: an external cluster, or the embedded Kafka (one KRaft node, or a cluster of three)."""

    bootstrap: str | None = Field(
        default=None,
        description="bootstrap servers of an external Kafka/Redpanda; when set, nothing is started",
    )
    brokers: int = Field(
        default=1,
        ge=1,
        description="embedded KRaft nodes, each a broker and a controller: 1, or 3 (a cluster: services `kafka`, "
        "`kafka-2`, `kafka-3`; every topic replicated 3 times with `min.insync.replicas` 2)",
    )
    port: int = Field(
        default=19092,
        ge=0,
        le=65535,
        description="embedded broker port (0 = pick a free one); node n of a cluster listens on port + 2(n - 1)",
    )
    controller_port: int = Field(
        default=19093,
        ge=0,
        le=65535,
        description="embedded KRaft controller port (0 = pick a free one); node n of a cluster on controller_port "
        "+ 2(n - 1)",
    )
    heap_mb: int = Field(default=512, ge=128, description="embedded broker JVM heap (MB), for each node")
    max_connections: int = Field(
        default=1000,
        ge=32,
        description="embedded broker: most client connections it holds at once, on each of its two listeners "
        "(lowered at start to fit its file limit); a connection past it waits in the kernel's queue, and one idle "
        "for `connections.max.idle.ms` (30 s) is closed, so a flood of idle connections delays new clients but "
        "cannot exhaust the broker's file descriptors",
    )
    version: str = Field(default="4.1.1", description="Apache Kafka version fetched from Maven Central")
    jars_dir: Path | None = Field(
        default=None, description="where Kafka's jars are cached (default: ~/.cache/tickwave/kafka-<version>)"
    )
    maven_repository: str = Field(
        default="https://repo1.maven.org/maven2",
        pattern=r"^https?://",
        description="the Maven repository Kafka's locked jars are fetched from (a mirror of Maven Central)",
    )
    topic_prefix: str = Field(default="", description="prefix of every topic name (isolates tenants and tests)")
    ticks_partitions: int = Field(
        default=1, ge=1, description="partitions of the ticks topics (at least `streams.processes`; more cost latency)"
    )
    signals_partitions: int = Field(default=1, ge=1, description="partitions of the signals and orders topics")
    start_timeout_s: float = Field(default=90.0, gt=0, description="how long `up` waits for the broker")
    security_protocol: SecurityProtocol = Field(
        default="SASL_PLAINTEXT",
        description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; unset: SASL_PLAINTEXT for the embedded broker "
        "(SCRAM and ACLs per principal, on loopback only), SASL_SSL for an external cluster (`bootstrap`). The "
        "embedded broker runs SASL_PLAINTEXT or SASL_SSL (SCRAM, its own CA), or PLAINTEXT only when this asks "
        "for it (then any local process may write any topic, orders included: `up` and `status` warn)",
    )
    sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512",
        description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, or OAUTHBEARER (passed to librdkafka with "
        "`sasl_oauthbearer_config`)",
    )
    username: str | None = Field(
        default=None,
        description="SASL principal of this process (embedded broker: ingest, dataflow, loader, execution, audit, "
        "operator, reader, or admin; `tickwave up` gives each of its processes its own)",
    )
    password: SecretStr | None = Field(
        default=None,
        description="SASL password (secret; embedded broker: read from its state dir when unset)",
    )
    credentials_dir: Path | None = Field(
        default=None,
        description="folder of an embedded broker's generated credentials (`<principal>.password`, `ca.pem`), "
        "for a process whose state dir is not the broker's, with `bootstrap` (default: `<state dir>/secrets/kafka`)",
    )
    sasl_oauthbearer_config: SecretStr | None = Field(
        default=None, description="OAUTHBEARER: librdkafka's `sasl.oauthbearer.config` (secret)"
    )
    ssl_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle that verifies the brokers (SSL, SASL_SSL; unset: the system's trust store, "
        "embedded broker: its own CA)",
    )
    ssl_certificate_file: Path | None = Field(
        default=None, description="PEM client certificate for mutual TLS (with `ssl_key_file`)"
    )
    ssl_key_file: Path | None = Field(default=None, description="PEM private key of `ssl_certificate_file`")
    ssl_key_password: SecretStr | None = Field(
        default=None, description="password of `ssl_key_file` when it is encrypted (secret)"
    )

    @property
    def is_external(self) -> bool:
        """Return True when a user-provided cluster is configured."""
        return bool(self.bootstrap)

    @property
    def node_names(self) -> tuple[str, ...]:
        """The supervisor's names of the embedded nodes: ``kafka``, then ``kafka-2``, ``kafka-3`` in a cluster."""
        return tuple("kafka" if node == 1 else f"kafka-{node}" for node in range(1, self.brokers + 1))

    @property
    def is_embedded_plaintext(self) -> bool:
        """Return True when the embedded broker runs unauthenticated (any local process may write)."""
        return not self.is_external and self.security_protocol == "PLAINTEXT"

    @property
    def has_generated_credentials(self) -> bool:
        """Return True when clients take their password and CA from an embedded broker's generated credentials."""
        return self.is_sasl and (not self.is_external or self.credentials_dir is not None)

    @property
    def is_sasl(self) -> bool:
        """Return True when clients authenticate with SASL."""
        return self.security_protocol.startswith("SASL_")

    @property
    def is_tls(self) -> bool:
        """Return True when connections are encrypted with TLS."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="before")
    @classmethod
    def _external_default_is_tls(cls, data: Any) -> Any:
        """An external cluster (``bootstrap`` without an embedded broker's ``credentials_dir``) defaults to SASL_SSL."""
        if isinstance(data, dict) and data.get("bootstrap") and not data.get("credentials_dir"):
            return {"security_protocol": "SASL_SSL", **data}
        return data

    @model_validator(mode="after")
    def _security_consistent(self) -> Self:
        problems = [*self._sasl_problems(), *self._tls_problems()]
        if not self.is_external and self.security_protocol not in EMBEDDED_PROTOCOLS:
            problems.append(f"the embedded broker runs {', '.join(EMBEDDED_PROTOCOLS)}, not {self.security_protocol}")
        if not self.is_external and self.is_sasl and not self.sasl_mechanism.startswith("SCRAM-"):
            problems.append(f"the embedded broker authenticates with SCRAM, not {self.sasl_mechanism}")
        if self.brokers not in (1, 3):
            problems.append(f"brokers is 1 or 3 (a quorum of three), not {self.brokers}")
        elif not self.is_external and self.brokers > 1:
            problems += self._cluster_problems()
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _cluster_problems(self) -> list[str]:
        problems = []
        fixed = [port + 2 * step for port in (self.port, self.controller_port) if port for step in range(self.brokers)]
        if len(set(fixed)) < len(fixed):
            problems.append(
                f"the cluster's nodes would share ports ({', '.join(map(str, sorted(fixed)))}): node n "
                f"uses port + 2(n - 1) and controller_port + 2(n - 1)"
            )
        return problems

    def _sasl_problems(self) -> list[str]:
        if not self.is_sasl:
            unused = [
                name
                for name in ("username", "password", "credentials_dir", "sasl_oauthbearer_config")
                if getattr(self, name)
            ]
            return [f"{', '.join(unused)} set but security_protocol is {self.security_protocol}"] if unused else []
        if self.sasl_mechanism not in PASSWORD_MECHANISMS:
            return []
        # The embedded broker generates the passwords, and `tickwave up` gives each process its principal.
        missing = [name for name in ("username", "password") if getattr(self, name) is None]
        if self.credentials_dir is not None:
            missing = [name for name in missing if name != "password"]  # read from the folder
        return [f"{self.security_protocol} with {self.sasl_mechanism} needs a {' and a '.join(missing)}"] * bool(
            self.is_external and missing
        )

    def _tls_problems(self) -> list[str]:
        files = {
            "ssl_ca_file": self.ssl_ca_file,
            "ssl_certificate_file": self.ssl_certificate_file,
            "ssl_key_file": self.ssl_key_file,
        }
        if not self.is_tls:
            unused = [name for name, path in files.items() if path] + (
                ["ssl_key_password"] if self.ssl_key_password else []
            )
            return [f"{', '.join(unused)} set but security_protocol is {self.security_protocol}"] if unused else []
        problems = [f"{name} {path} does not exist" for name, path in files.items() if path and not path.is_file()]
        if (self.ssl_certificate_file is None) != (self.ssl_key_file is None):
            problems.append("ssl_certificate_file and ssl_key_file go together")
        if self.ssl_key_password and not self.ssl_key_file:
            problems.append("ssl_key_password set without ssl_key_file")
        return problems
