"""Tickwave's own long-running processes as supervised services under ``tickwave up``.

The dataflow (``tickwave streams run``), the execution process (``tickwave execution
run``) and the audit loader (``tickwave execution audit``) start after Kafka (topics
created) and the warehouse (schema migrated). Each receives the parent's effective
configuration through ``TICKWAVE_*`` variables and is ready once it writes its marker
(``run/<name>.ready``, via :func:`mark_ready`) after building everything it needs; one
that fails to start ends, and ``up`` shows its log tail.
"""

from __future__ import annotations

import sys
from pathlib import Path

from adapters.bus import as_principal
from adapters.endpoints import free_port, ready_marker
from adapters.metrics import metrics_port
from app.services.supervisor import Launch, ManagedService
from tickwave.config import Settings, to_environment
from tickwave.topics import AUDIT, DATAFLOW, EXECUTION


class OwnProcessService(ManagedService):
    """One of Tickwave's own processes, run as ``python -m app.cli <arguments>``."""

    stop_timeout_s = 30.0
    serves_metrics = True  # the process serves /metrics on the port reserved for it (a Prometheus target)

    def __init__(
        self, settings: Settings, name: str, arguments: list[str], address: str, principal: str | None = None
    ) -> None:
        """Run ``tickwave <arguments>`` as service ``name``, shown at ``address`` in status.

        Args:
            settings: the effective configuration, passed to the process.
            name: the service's name.
            arguments: the CLI arguments.
            address: what status shows as its address.
            principal: the Kafka principal it runs as on the secured embedded broker (its password is read
                from the state dir by the process itself).
        """
        super().__init__(settings)
        self.name = name
        self.arguments = arguments
        self.address = address
        self.principal = principal

    @property
    def external_address(self) -> str | None:
        """Never external: these are Tickwave's own processes."""
        return None

    @property
    def start_timeout_s(self) -> float:
        """Imports (Bytewax, ONNX Runtime, quixstreams) and connecting to the bus and warehouse."""
        return 120.0

    def prepare(self, data_dir: Path) -> None:
        """Forget the previous run's readiness."""
        ready_marker(self.settings.state_path, self.name).unlink(missing_ok=True)

    def launch(self, data_dir: Path) -> Launch:
        """Return the command, with the effective configuration in its environment."""
        settings = as_principal(self.settings, self.principal) if self.principal else self.settings
        return Launch(
            command=[sys.executable, "-m", "app.cli", *self.arguments],
            address=self.address,
            ports={"metrics": metrics_port(self.settings, self.name)}
            if self.settings.metrics.enabled and self.serves_metrics
            else {},
            env=to_environment(settings),
        )

    def probe(self, address: str) -> bool:
        """Return True once the process has written its ready marker."""
        return ready_marker(self.settings.state_path, self.name).exists()


class OrchestrationService(OwnProcessService):
    """``tickwave orchestrate``: Dagster's webserver and daemon (they take 10-25 s to answer)."""

    stop_timeout_s = 45.0  # above the 20 s the command gives the webserver and daemon
    serves_metrics = False  # Dagster's run outcomes are the supervisor's metrics (read from the warehouse)

    @property
    def start_timeout_s(self) -> float:
        """Dagster's imports, the code location's load and the dbt manifest."""
        return self.settings.orchestration.start_timeout_s + 30.0


def own_processes(settings: Settings) -> list[ManagedService]:
    """The dataflow, the execution process, the audit loader, Dagster and the supervisor (if enabled), in order."""
    processes = settings.streams.processes
    services: list[ManagedService] = [
        OwnProcessService(settings, "streams", ["streams", "run"], f"bytewax x{processes}", DATAFLOW),
        OwnProcessService(
            settings, "execution", ["execution", "run"], f"{settings.execution.broker} broker", EXECUTION
        ),
        OwnProcessService(settings, "audit", ["execution", "audit"], "orders.events -> warehouse", AUDIT),
    ]
    if settings.orchestration.enabled:
        port = settings.orchestration.port or free_port()
        services.append(
            OrchestrationService(
                settings, "orchestration", ["orchestrate", "--port", str(port)], f"http://127.0.0.1:{port}"
            )
        )
    if settings.supervision.enabled:  # last: it watches the others, and `down` stops it first
        services.append(OwnProcessService(settings, "supervisor", ["supervise"], "restarts crashed services"))
    return services
