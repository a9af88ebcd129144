"""The warehouse section."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, model_validator

from tickwave.config.base import Section


class ClickHouseSettings(Section):
    """The warehouse: an external ClickHouse server, or the embedded chdb HTTP service."""

    url: str | None = Field(
        default=None, description="URL of an external ClickHouse HTTP interface; when set, nothing is started"
    )
    tls: bool = Field(
        default=False,
        description="reach the warehouse over HTTPS, the certificate verified against ca_file (an https:// url "
        "implies it); the embedded warehouse then serves HTTPS with tls_cert_file and tls_key_file, or a CA and "
        "a certificate for 127.0.0.1/localhost generated under the state dir",
    )
    ca_file: Path | None = Field(
        default=None,
        description="CA certificate (PEM) every client verifies the warehouse's certificate against; default: the "
        "generated CA (embedded), the system's trust store (external)",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="embedded warehouse: its certificate chain (PEM) for HTTPS; with tls_key_file"
    )
    tls_key_file: Path | None = Field(
        default=None, description="embedded warehouse: the private key (PEM) of tls_cert_file; keep it 0600"
    )
    port: int = Field(default=18123, ge=0, le=65535, description="embedded warehouse HTTP port (0 = pick a free one)")
    native_port: int = Field(
        default=19000,
        ge=0,
        le=65535,
        description="embedded warehouse: ClickHouse's native TCP port (clickhouse client, clickhouse-driver, "
        "clickhouse-go's native mode) on 127.0.0.1, TLS when tls is on (0 = pick a free one)",
    )
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
    engine_query_log_days: int = Field(
        default=0,
        ge=0,
        le=3650,
        description="embedded warehouse: days the engine's system.query_log keeps every query's full text, for the "
        "service user alone (0 = no system.query_log)",
    )
    max_connections: int = Field(
        default=1024,
        ge=2,
        description="embedded warehouse: open connections at most (max_connections); past it the least active one "
        "that is not the service user's and holds no query slot is closed",
    )
    max_connections_per_client: int = Field(
        default=256, ge=1, description="embedded warehouse: open connections from one client address at most"
    )
    http_receive_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="embedded warehouse: time a request's head may take to arrive, and the longest pause in its "
        "body (http_receive_timeout), s",
    )
    http_send_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="embedded warehouse: longest a response may stall because its client reads nothing "
        "(http_send_timeout); past it the connection is cut and the query's slot given back, s",
    )
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
    analyst_refused_body_delay_s: float = Field(
        default=1.0,
        ge=0,
        le=30,
        description="embedded warehouse: how late a read-only user's undecodable or oversized body is answered, "
        "its query slot held meanwhile (a timer, no CPU), s",
    )
    confine_engine: bool = Field(
        default=True,
        description="embedded warehouse: Landlock-confine the process to the files it needs and its data dir, "
        "no TCP connection (Linux 5.13+, network 6.7+; else logged)",
    )
    max_failed_logins: int = Field(
        default=10, ge=1, description="embedded warehouse: failed logins per user (from any address) before a lock-out"
    )
    failed_login_window_s: float = Field(
        default=300.0, gt=0, description="embedded warehouse: window of the failed-login count and the lock-out, s"
    )
    failed_login_delay_s: float = Field(
        default=1.0,
        ge=0,
        le=30,
        description="embedded warehouse: how late a refused or failed login is answered once its user has "
        "max_failed_logins failures in the window (a timer, no CPU), s",
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description=(
            "embedded warehouse: proxy addresses or networks whose X-Forwarded-For names the client "
            "(JSON list; empty: the TCP peer is the client, forwarded headers are ignored)"
        ),
    )

    @model_validator(mode="after")
    def _tls_is_consistent(self) -> ClickHouseSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("clickhouse.tls_cert_file and clickhouse.tls_key_file go together: set both or neither")
        if self.url and self.tls and urlsplit(self.url).scheme != "https":
            raise ValueError(f"clickhouse.tls is on but clickhouse.url {self.url!r} is not https://")
        return self

    @property
    def is_external(self) -> bool:
        """Return True when a user-provided ClickHouse server is configured."""
        return bool(self.url)
