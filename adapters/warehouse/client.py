"""clickhouse-connect clients configured the Tickwave way, for any ClickHouse HTTP server.

The URL is ``clickhouse.url`` when an external server is configured, else the embedded
service's endpoint record (as :func:`adapters.bus.resolve_bootstrap` does for Kafka).
Users and passwords come from :mod:`adapters.warehouse.credentials`.

Clients are created without an HTTP session (``autogenerate_session_id=False``): a
session serves one request at a time, so one client shared by a writer thread and its
caller would fail with SESSION_IS_LOCKED. Pass ``session_id=...`` to get one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from adapters.endpoints import live_endpoint
from adapters.warehouse.credentials import resolve_credentials
from tickwave.config import Settings
from tickwave.errors import ConfigurationError, ServiceError

SERVICE_NAME = "warehouse"


def warehouse_url(settings: Settings) -> str:
    """Return the warehouse's HTTP URL: the external server or the running embedded service.

    Raises:
        ServiceError: when no external server is set and the embedded one is not up.
    """
    if settings.clickhouse.url:
        return settings.clickhouse.url
    endpoint = live_endpoint(settings.state_path, SERVICE_NAME)
    if endpoint is None:
        raise ServiceError(
            f"the warehouse is not running for state dir {settings.state_path}: "
            f"run `tickwave up`, or set TICKWAVE_CLICKHOUSE_URL to an existing ClickHouse server"
        )
    return f"http://{endpoint.address}"


def connect(
    settings: Settings,
    *,
    readonly: bool = False,
    database: str | None = None,
    **options: Any,
) -> Client:
    """Return a clickhouse-connect client for the warehouse.

    Args:
        settings: the configuration.
        readonly: connect as the analyst (read-only) user instead of the service user.
        database: the database for unqualified names (default ``clickhouse.database``).
        **options: passed to ``clickhouse_connect.get_client`` (e.g. ``session_id``,
            ``send_receive_timeout``, ``settings``).

    Raises:
        ServiceError: when the warehouse cannot be located or credentials are missing.
        ConfigurationError: for a malformed ``clickhouse.url``.
    """
    url = warehouse_url(settings)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"clickhouse.url {url!r}: expected http(s)://host[:port][/path]")
    credentials = resolve_credentials(settings)
    user = credentials.analyst_user if readonly else credentials.user
    password = (credentials.analyst_password if readonly else credentials.password).get_secret_value()
    compression = settings.clickhouse.client_compression
    options.setdefault("autogenerate_session_id", False)
    return clickhouse_connect.get_client(
        interface=parts.scheme,
        host=parts.hostname,
        port=parts.port or (8443 if parts.scheme == "https" else 8123),
        username=user,
        password=password,
        database=settings.clickhouse.database if database is None else database,
        compress=False if compression == "none" else compression,
        proxy_path=parts.path.strip("/"),
        **options,
    )
