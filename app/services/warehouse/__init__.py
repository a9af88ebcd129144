"""The embedded warehouse: ``tickwave warehouse serve`` as a supervised background service.

It serves the ClickHouse HTTP interface and the native TCP protocol (``clickhouse.native_port``)
on 127.0.0.1 over a chdb directory under the
state dir (``data/warehouse/chdb``). Its first start generates the warehouse passwords
unless they are configured (see :mod:`adapters.warehouse.credentials`); the server
process receives the effective configuration through ``TICKWAVE_*`` variables, never on
its command line, and re-executes itself at once with a scrubbed environment and its
passwords on an inherited pipe (:func:`warehouse_server.security.confinement.exec_scrubbed`), so
what this launch passes (or the user exported) does not stay in the engine's process.
With ``clickhouse.tls`` on it serves HTTPS, with the configured certificate or one
generated at the first start (:mod:`adapters.warehouse.tls`), and the readiness probe
verifies it as every client does. With ``TICKWAVE_CLICKHOUSE_URL`` set, none of this runs.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from pathlib import Path

from adapters.endpoints import LOOPBACK, free_port
from adapters.metrics import metrics_port
from adapters.warehouse.address import embedded_address
from adapters.warehouse.credentials import resolve_credentials
from adapters.warehouse.tls import server_tls
from app.services.supervisor import Launch, ManagedService, ensure_port_free
from tickwave.config import to_environment


class WarehouseService(ManagedService):
    """The embedded ClickHouse HTTP service on chdb."""

    name = "warehouse"
    stop_timeout_s = 45.0  # above clickhouse.shutdown_timeout_s (25 s): in-flight requests finish first
    holds_data = True

    @property
    def external_address(self) -> str | None:
        """The user's ClickHouse server, if configured."""
        return self.settings.clickhouse.url

    @property
    def start_timeout_s(self) -> float:
        """How long to wait for /ping to answer."""
        return self.settings.clickhouse.start_timeout_s

    def prepare(self, data_dir: Path) -> None:
        """Generate the warehouse passwords once and, with TLS on, its certificate, unless configured."""
        resolve_credentials(self.settings, create=True)
        server_tls(self.settings, create=True)

    def launch(self, data_dir: Path) -> Launch:
        """Return the ``python -m warehouse_server serve`` command on a free or configured port."""
        port = self.settings.clickhouse.port or free_port()
        native_port = self.settings.clickhouse.native_port or free_port()
        metrics = self.settings.metrics
        ensure_port_free(port, "warehouse", "TICKWAVE_CLICKHOUSE_PORT")
        ensure_port_free(native_port, "warehouse (native protocol)", "TICKWAVE_CLICKHOUSE_NATIVE_PORT")
        command = [
            sys.executable,
            "-m",
            "warehouse_server",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
        ]
        return Launch(
            command=command,
            address=f"{LOOPBACK}:{port}",
            ports={
                "http": port,
                "native": native_port,
                **({"metrics": metrics_port(self.settings, self.name)} if metrics.enabled else {}),
            },
            env={**self._server_environment(native_port), "TZ": "UTC"},
        )

    def after_start(self) -> str | None:
        """Apply the schema migrations not applied yet, then the retention settings' TTLs."""
        from adapters.warehouse.retention import migrate  # clickhouse-connect loads only when needed

        applied, retention = migrate(self.settings)
        done = [f"schema: applied {', '.join(applied)}"] if applied else []
        done += [f"retention: TTLs of {len(retention)} tables set (logged)"] if retention else []
        return "; ".join(done) or None

    def _server_environment(self, native_port: int) -> dict[str, str]:
        # The server sees exactly what the parent resolved (keyword overrides included),
        # except the URL (unset: it is the embedded server), the port (given as --port) and
        # the native port (the one chosen here when it is 0).
        environment = to_environment(self.settings)
        for name in ("TICKWAVE_CLICKHOUSE_URL", "TICKWAVE_CLICKHOUSE_PORT"):
            environment.pop(name, None)
        environment["TICKWAVE_CLICKHOUSE_NATIVE_PORT"] = str(native_port)
        return environment

    def probe(self, address: str) -> bool:
        """Return True once ``GET /ping`` answers ``Ok.`` (over HTTPS, from a server the CA vouches for)."""
        target = embedded_address(self.settings, int(address.rsplit(":", 1)[1]))
        try:
            ping = f"{target.url}/ping"  # http(s)://127.0.0.1:port, built here
            with urllib.request.urlopen(ping, timeout=2.0, context=target.ssl_context()) as response:  # noqa: S310
                return bool(response.read() == b"Ok.\n")
        except (urllib.error.URLError, OSError):
            return False
