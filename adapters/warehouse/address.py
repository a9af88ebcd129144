"""How every client reaches the warehouse: scheme, host, port, URL path and the CA it verifies against.

One rule, read by every client (clickhouse-connect, dbt's profile, the Dagster resource
through the client, the dashboards' runner, the Go checker, Grafana's provisioning file,
the readiness probe): the address is ``clickhouse.url`` when an external server is
configured, else the embedded service on ``127.0.0.1``; it is HTTPS when ``clickhouse.tls``
is on or the URL is ``https://``. Over HTTPS the certificate is always verified: against
``clickhouse.ca_file`` when set, else the generated CA of the embedded warehouse (see
:mod:`adapters.warehouse.tls`), else (an external server) the system's trust store.
There is no setting that turns verification off.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from adapters.endpoints import LOOPBACK, live_endpoint
from adapters.warehouse.tls import generated_ca_file, is_generated
from tickwave.config import Settings
from tickwave.errors import ConfigurationError, ServiceError

SERVICE_NAME = "warehouse"
DEFAULT_PORTS = {"http": 8123, "https": 8443}  # ClickHouse's HTTP interface, plain and TLS


@dataclass(frozen=True)
class WarehouseAddress:
    """Where the warehouse's HTTP interface is and how its certificate is verified.

    Attributes:
        scheme: ``http`` or ``https``.
        host: host name or address.
        port: TCP port.
        path: the URL path prefix without slashes (a proxy's), often empty.
        ca_file: the CA certificate clients verify the server against (HTTPS only);
            None: the system's trust store.
    """

    scheme: Literal["http", "https"]
    host: str
    port: int
    path: str = ""
    ca_file: Path | None = None

    @property
    def is_secure(self) -> bool:
        """Return True over HTTPS."""
        return self.scheme == "https"

    @property
    def host_port(self) -> str:
        """Return ``host:port`` (an IPv6 address in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """Return the base URL, ``scheme://host:port[/path]``."""
        return f"{self.scheme}://{self.host_port}" + (f"/{self.path}" if self.path else "")

    def ssl_context(self) -> ssl.SSLContext | None:
        """Return a verifying TLS context for this address (its CA, else the system's), or None over HTTP."""
        if not self.is_secure:
            return None
        return ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)


def client_ca_file(settings: Settings) -> Path | None:
    """Return the CA clients verify the warehouse against: configured, generated, or None (system store)."""
    if settings.clickhouse.ca_file is not None:
        return settings.clickhouse.ca_file
    return generated_ca_file(settings) if is_generated(settings) else None


def parse_address(url: str, ca_file: Path | None = None) -> WarehouseAddress:
    """Return the address of ``url`` (``http(s)://host[:port][/path]``).

    Raises:
        ConfigurationError: for another scheme or no host.
    """
    parts = urlsplit(url)
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ConfigurationError(f"clickhouse.url {url!r}: expected http(s)://host[:port][/path]")
    scheme: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise ConfigurationError(f"clickhouse.url {url!r}: {exc}") from exc
    return WarehouseAddress(scheme, parts.hostname, port, parts.path.strip("/"), ca_file if scheme == "https" else None)


def embedded_address(settings: Settings, port: int) -> WarehouseAddress:
    """Return the embedded warehouse's address on ``port`` of 127.0.0.1."""
    scheme: Literal["http", "https"] = "https" if settings.clickhouse.tls else "http"
    return WarehouseAddress(scheme, LOOPBACK, port, "", client_ca_file(settings) if scheme == "https" else None)


def configured_address(settings: Settings) -> WarehouseAddress:
    """Return the address as configured (the embedded one on ``clickhouse.port``), for files written ahead.

    Grafana's provisioning file is written before anything runs, so it names the configured
    port, not the running service's.
    """
    if settings.clickhouse.url:
        return parse_address(settings.clickhouse.url, client_ca_file(settings))
    return embedded_address(settings, settings.clickhouse.port)


def warehouse_address(settings: Settings) -> WarehouseAddress:
    """Return the address of the external server or the running embedded service.

    Raises:
        ServiceError: when no external server is set and the embedded one is not up.
        ConfigurationError: for a malformed ``clickhouse.url``.
    """
    if settings.clickhouse.url:
        return parse_address(settings.clickhouse.url, client_ca_file(settings))
    endpoint = live_endpoint(settings.state_path, SERVICE_NAME)
    if endpoint is None:
        raise ServiceError(
            f"the warehouse is not running for state dir {settings.state_path}: "
            f"run `tickwave up`, or set TICKWAVE_CLICKHOUSE_URL to an existing ClickHouse server"
        )
    return embedded_address(settings, endpoint.ports.get("http") or int(endpoint.address.rsplit(":", 1)[1]))
