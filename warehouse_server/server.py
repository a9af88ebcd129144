"""``tickwave warehouse serve``: run the embedded ClickHouse HTTP service in the foreground.

Start-up (in a process executed with a scrubbed environment, see
:func:`warehouse_server.security.confinement.exec_scrubbed`): pin the engine's time zone to UTC,
take the users' passwords from the inherited descriptor, refuse to start with a
password-less user unless ``allow_no_password`` is set, load the TLS certificate and key
when ``clickhouse.tls`` is on (:mod:`adapters.warehouse.tls`), confine the process with
Landlock (:mod:`warehouse_server.security.confinement`), open the chdb directory (a second
process on it fails here), then serve on 127.0.0.1 only (HTTPS with TLS on, else HTTP).

Shutdown on SIGTERM or SIGINT: stop accepting, let in-flight requests finish (up to
``shutdown_timeout_s``), then close the sessions, wait for the worker threads (an
insert that already reached the engine is committed, answered or not) and close the
engine. Every acknowledged insert was committed before its response was sent.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import ssl
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import uvicorn

from adapters.endpoints import LOOPBACK
from adapters.metrics import register_collectors, serve_metrics
from adapters.warehouse.credentials import Credentials
from adapters.warehouse.tls import ServerTls, server_tls
from tickwave.config import ClickHouseSettings, Settings
from tickwave.errors import ConfigurationError, ServiceError
from tickwave.warehouse.sqltext import quote_identifier
from warehouse_server.http.asgi import Limits, WarehouseApp
from warehouse_server.http.connections import HttpBounds, bounded_protocol
from warehouse_server.metrics import SlotsCollector, know_users
from warehouse_server.native.server import NativeBounds, NativeServer
from warehouse_server.native.wire import ServerIdentity
from warehouse_server.protocol import SERVER_DISPLAY_NAME, QueryError
from warehouse_server.query.accesslog import AccessLog
from warehouse_server.query.dispatch import Executor, SessionLimits
from warehouse_server.query.engine import Engine
from warehouse_server.query.memory import MemoryReturner, engine_memory_settings, write_engine_config
from warehouse_server.query.priority import lower_cpu_priority
from warehouse_server.query.sessions import SessionStore
from warehouse_server.security.auth import READ_WRITE, User, users_from, write_engine_users
from warehouse_server.security.budget import ConnectionBudget
from warehouse_server.security.confinement import confine, warehouse_rules
from warehouse_server.security.limits import AnalystLimits, LoginGuard
from warehouse_server.security.policy import (
    DatabaseCatalog,
    FunctionCatalog,
    ReadOnlyPolicy,
    read_catalog,
    read_databases,
    read_system_columns,
)

logger = logging.getLogger(__name__)

CHDB_DIR = "chdb"
ENGINE_CONFIG = "engine.xml"  # the engine's configuration file, beside its directory (written at each start)
ENGINE_USERS = "engine-users.xml"  # the engine's user directory (mode 0600, written at each start)
SANDBOX_DIR = "sandbox"  # every file root of the engine (user_files_path...), empty
MAX_SESSION_TIMEOUT_S = 3600.0
KEEP_ALIVE_TIMEOUT_S = 30
RESPONSE_BUFFER_BYTES = 1 << 20


class _Server(uvicorn.Server):
    """uvicorn's server, minus re-raising the signal after a graceful shutdown, plus the native port.

    uvicorn re-raises SIGTERM/SIGINT once it has shut down, which would end the process
    by the signal (or a KeyboardInterrupt traceback) after our clean shutdown; a
    completed graceful shutdown should exit 0. The native TCP server runs on the same
    event loop: it starts after uvicorn's and is closed first, its running queries ending
    before the engine closes.
    """

    native: tuple[NativeServer, socket.socket, ssl.SSLContext | None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start uvicorn's server, then accept on the native port."""
        await super().startup(sockets)
        if self.native is not None and not self.should_exit:
            native, sock, context = self.native
            await native.start(sock, context)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Close the native port and let its queries end, then shut uvicorn down."""
        if self.native is not None:
            await self.native[0].close(self.config.timeout_graceful_shutdown or 0)
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _users(settings: Settings, credentials: Credentials) -> dict[str, User]:
    users = users_from(credentials, settings.clickhouse.allow_no_password)
    missing = [user.name for user in users.values() if not user.password and user.name != "default"]
    if missing and not settings.clickhouse.allow_no_password:
        raise ConfigurationError(
            f"warehouse user(s) {', '.join(missing)} have no password; set TICKWAVE_CLICKHOUSE_PASSWORD / "
            f"TICKWAVE_CLICKHOUSE_ANALYST_PASSWORD, or TICKWAVE_CLICKHOUSE_ALLOW_NO_PASSWORD=true for local development"
        )
    return users


def proxy_options(clickhouse: ClickHouseSettings) -> dict[str, Any]:
    """Uvicorn's proxy-header options: forwarded headers count only from ``clickhouse.trusted_proxies``.

    uvicorn trusts ``X-Forwarded-For`` from 127.0.0.1 by default: every local client could
    name any address, and so dodge or aim the login lock-out and forge ``query_log``.
    """
    trusted = list(clickhouse.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or None}


def tls_context(files: ServerTls) -> ssl.SSLContext:
    """Return the server's TLS context (TLS 1.2 at least), its certificate and key loaded now.

    Loaded before the process confines itself: afterwards it can no longer read the key file.

    Raises:
        ConfigurationError: the files cannot be read or do not form a certificate and its key.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(files.cert_file, files.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load the warehouse certificate {files.cert_file} and key: {exc}") from exc
    return context


def tls_options(context: ssl.SSLContext | None) -> dict[str, Any]:
    """Uvicorn's options to serve HTTPS with ``context`` (none: plain HTTP)."""
    if context is None:
        return {}
    return {"ssl_context_factory": lambda _config, _default: context}


def native_socket(port: int) -> socket.socket:
    """Bind and listen on 127.0.0.1:``port`` for the native protocol (before the confinement, which allows one bind).

    Raises:
        ServiceError: the port is taken.
    """
    try:
        return socket.create_server((LOOPBACK, port), backlog=128)
    except OSError as exc:
        raise ServiceError(
            f"cannot listen on the native port {LOOPBACK}:{port}: {exc.strerror} (set TICKWAVE_CLICKHOUSE_NATIVE_PORT)"
        ) from exc


def serve(settings: Settings, data_dir: Path, port: int, credentials: Credentials) -> None:
    """Serve the warehouse on 127.0.0.1:``port`` over the chdb directory under ``data_dir``.

    ``credentials`` are the users' passwords, taken from the inherited descriptor.

    Raises:
        ConfigurationError: when a user has no password and that is not allowed.
        ServiceError: when the engine cannot open its directory.
    """
    os.environ["TZ"] = "UTC"  # the engine reads the zone once, at start
    time.tzset()
    lower_cpu_priority(settings.clickhouse.nice)  # inserts and merges come in CPU bursts: the hot path runs first
    users = _users(settings, credentials)
    clickhouse = settings.clickhouse
    sandbox = data_dir / SANDBOX_DIR
    (sandbox / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(sandbox / "tmp")  # chdb's own scratch directory, inside what it may write
    files = server_tls(settings)
    context = tls_context(files) if files else None
    engine_users = write_engine_users(data_dir / ENGINE_USERS, users)  # a dictionary's source may name a user
    server_settings = engine_memory_settings(clickhouse.max_memory_mb) | write_engine_config(
        data_dir / ENGINE_CONFIG, engine_users, clickhouse.engine_query_log_days
    )
    know_users(users)
    serve_metrics(settings, "warehouse")  # before the confinement: it allows binding the warehouse's port only
    listening = native_socket(clickhouse.native_port)  # likewise
    confine(warehouse_rules(data_dir, port), enabled=clickhouse.confine_engine)
    try:
        engine = Engine(data_dir / CHDB_DIR, sandbox, server_settings)
    except QueryError as exc:
        raise ServiceError(
            f"cannot open the warehouse directory {data_dir / CHDB_DIR}: {exc.message} "
            f"(one process owns a directory: is another warehouse running on it? see `tickwave status`)"
        ) from exc
    # The analyst's unqualified names resolve here: it exists from the start, before any migration.
    engine.run_admin(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(clickhouse.database)}")
    analyst_limits = AnalystLimits.from_settings(clickhouse)
    sessions = SessionStore(lambda level: engine.open(level, analyst_limits.for_level(level)), clickhouse.max_sessions)
    policy = ReadOnlyPolicy(
        FunctionCatalog(lambda: read_catalog(engine.run_admin)),
        DatabaseCatalog(lambda: read_databases(engine.run_admin)),
        system_columns=read_system_columns(engine.run_admin),
    )
    pool = ThreadPoolExecutor(max_workers=clickhouse.max_concurrent_queries, thread_name_prefix="warehouse-query")

    access_log = AccessLog(lambda: engine.open(0), clickhouse.database)
    memory = MemoryReturner(lambda: engine.open(0))
    memory.start()

    def shutdown() -> None:
        sessions.close_all()
        pool.shutdown(wait=True)
        access_log.close()
        memory.close()
        engine.close()
        logger.info("warehouse engine closed")

    executor = Executor(
        engine,
        sessions,
        SessionLimits(clickhouse.session_timeout_s, MAX_SESSION_TIMEOUT_S),
        policy,
        analyst_limits,
        analyst_database=clickhouse.database,
    )
    register_collectors("warehouse", [SlotsCollector(executor.concurrency, clickhouse.max_concurrent_queries)])
    app = WarehouseApp(
        executor,
        users,
        Limits(
            max_body_bytes=clickhouse.max_request_mb << 20,
            max_decoded_bytes=4 * (clickhouse.max_request_mb << 20),
            response_buffer_bytes=RESPONSE_BUFFER_BYTES,
            keep_alive_timeout_s=KEEP_ALIVE_TIMEOUT_S,
            read_only_refused_body_delay_s=clickhouse.analyst_refused_body_delay_s,
        ),
        pool,
        shutdown,
        LoginGuard(
            clickhouse.max_failed_logins,
            clickhouse.failed_login_window_s,
            never_locked=[user.name for user in users.values() if user.readonly == READ_WRITE],
            answer_delay_s=clickhouse.failed_login_delay_s,
        ),
        access_log,
    )
    budget = ConnectionBudget(clickhouse.max_connections, clickhouse.max_connections_per_client)
    native = NativeServer(
        executor,
        users,
        app.login_guard,
        app.query_ids,
        budget,
        pool,
        NativeBounds(
            receive_timeout_s=clickhouse.http_receive_timeout_s,
            send_timeout_s=clickhouse.http_send_timeout_s,
            max_packet_bytes=clickhouse.max_request_mb << 20,
        ),
        ServerIdentity("ClickHouse", engine.version, engine.timezone, SERVER_DISPLAY_NAME),
        access_log,
        http_port=port,
    )
    config = uvicorn.Config(
        app,
        host=LOOPBACK,
        port=port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT_S,
        timeout_graceful_shutdown=int(clickhouse.shutdown_timeout_s),
        http=bounded_protocol(
            HttpBounds(
                receive_timeout_s=clickhouse.http_receive_timeout_s, send_timeout_s=clickhouse.http_send_timeout_s
            ),
            budget,
        ),
        **proxy_options(clickhouse),
        **tls_options(context),
    )
    logger.info(
        "warehouse serving ClickHouse %s on %s:%d and its native protocol on port %d (engine %s, data %s, %d workers)",
        "HTTPS" if context else "HTTP",
        LOOPBACK,
        port,
        listening.getsockname()[1],
        engine.version,
        data_dir / CHDB_DIR,
        clickhouse.max_concurrent_queries,
    )
    server = _Server(config)
    server.native = (native, listening, context)
    server.run()
