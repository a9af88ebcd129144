"""The dataflow as a supervised background service (``tickwave streams run`` under ``tickwave up``).

It starts after Kafka (topics created) and the warehouse (schema migrated), receives
the parent's effective configuration through ``TICKWAVE_*`` variables, and is ready once
the flow is built (its runner writes a marker; a failure to build, e.g. a missing topic,
ends the process and ``up`` shows its log tail).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tickwave.config import to_environment
from tickwave.services.supervisor import Launch, ManagedService

READY_MARKER = "ready"


def ready_marker(state_path: Path) -> Path:
    """The file the runner writes once the flow is built."""
    return state_path / "data" / "streams" / READY_MARKER


class StreamsService(ManagedService):
    """The Bytewax dataflow, run by Tickwave itself (there is no external replacement)."""

    name = "streams"
    stop_timeout_s = 30.0

    @property
    def external_address(self) -> str | None:
        """Never external: the dataflow is Tickwave's own process."""
        return None

    @property
    def start_timeout_s(self) -> float:
        """Imports (Bytewax, ONNX Runtime) and the flow's construction."""
        return 90.0

    def prepare(self, data_dir: Path) -> None:
        """Forget the previous run's readiness."""
        ready_marker(self.settings.state_path).unlink(missing_ok=True)

    def launch(self, data_dir: Path) -> Launch:
        """Return ``python -m tickwave.cli streams run``."""
        processes = self.settings.streams.processes
        return Launch(
            command=[sys.executable, "-m", "tickwave.cli", "streams", "run"],
            address=f"{processes} process{'es' if processes > 1 else ''}",
            ports={},
            env=to_environment(self.settings),
        )

    def probe(self, address: str) -> bool:
        """Return True once the runner has built the flow."""
        return ready_marker(self.settings.state_path).exists()
