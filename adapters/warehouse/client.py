"""clickhouse-connect clients configured the Tickwave way, for any ClickHouse HTTP server.

The address (``clickhouse.url``, else the embedded service's endpoint record, as
:func:`adapters.bus.resolve_bootstrap` does for Kafka) and, over HTTPS, the CA the
certificate is verified against come from :mod:`adapters.warehouse.address`. Users and
passwords come from :mod:`adapters.warehouse.credentials`.

Clients are created without an HTTP session (``autogenerate_session_id=False``): a
session serves one request at a time, so one client shared by a writer thread and its
caller would fail with SESSION_IS_LOCKED. Pass ``session_id=...`` to get one. Nor with
a query id of the client's making (``autogenerate_query_id=False``): a new id in every
request's URL made every URL new to urllib3's URL caches (1,024 entries each), about
1.7 MB that every long-running process filled over its first hours and kept; the server
gives each query an id (echoed in ``X-ClickHouse-Query-Id``, logged) as ClickHouse does.

Connections are not recycled by age: clickhouse-connect's ``max_connection_age`` (10
minutes) clears the shared pools from whichever thread asks next, closing the sockets
other threads are mid-request on, so every 10 minutes the streams loader's concurrent
inserts failed ("Pool is closed", EBADF) and were retried. Importing this module sets it
to 0 for the process; the server still closes connections idle past its keep-alive.

Over HTTPS with a CA file, clients share one verifying connection pool per CA file (as
plain clients share clickhouse-connect's default pool) instead of letting each client
build its own: clickhouse-connect closes a pool it built through urllib3 internals that
the installed ``urllib3`` (urllib3-future, brought in by niquests) lacks, so ``close()``
of such a client raises ``AttributeError``. A pool passed in is not closed by the client.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.httputil import get_pool_manager

from adapters.warehouse.address import WarehouseAddress, warehouse_address
from adapters.warehouse.credentials import resolve_credentials
from tickwave.config import Settings
from tickwave.errors import ConfigurationError

__all__ = ["connect", "tls_options", "warehouse_url"]

clickhouse_connect.common.set_setting("max_connection_age", 0)  # not thread-safe (module docstring)


def warehouse_url(settings: Settings) -> str:
    """Return the warehouse's base URL: the external server or the running embedded service.

    Raises:
        ServiceError: when no external server is set and the embedded one is not up.
    """
    return warehouse_address(settings).url


def tls_options(address: WarehouseAddress) -> dict[str, Any]:
    """Return clickhouse-connect's TLS options for ``address``: verified, against its CA if it has one.

    Raises:
        ConfigurationError: the CA file cannot be read.
    """
    if not address.is_secure:
        return {}
    options: dict[str, Any] = {"secure": True, "verify": True}
    if address.ca_file is not None:
        options["pool_mgr"] = _verifying_pool(address.ca_file)
    return options


def _verifying_pool(ca_file: Path) -> Any:
    try:
        changed_ns = ca_file.stat().st_mtime_ns  # a renewed CA gets a new pool
    except OSError as exc:
        raise ConfigurationError(f"cannot read the warehouse's CA file {ca_file}: {exc}") from exc
    return _pool_for(str(ca_file), changed_ns)


@lru_cache(maxsize=8)
def _pool_for(ca_file: str, changed_ns: int) -> Any:
    return get_pool_manager(ca_cert=ca_file, verify=True)


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
    address = warehouse_address(settings)
    credentials = resolve_credentials(settings)
    user = credentials.analyst_user if readonly else credentials.user
    password = (credentials.analyst_password if readonly else credentials.password).get_secret_value()
    compression = settings.clickhouse.client_compression
    options.setdefault("autogenerate_session_id", False)
    options.setdefault("autogenerate_query_id", False)
    return clickhouse_connect.get_client(
        interface=address.scheme,
        host=address.host,
        port=address.port,
        username=user,
        password=password,
        database=settings.clickhouse.database if database is None else database,
        compress=False if compression == "none" else compression,
        proxy_path=address.path,
        **tls_options(address),
        **options,
    )
