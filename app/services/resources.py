"""What the services use of the machine: memory per service, free disk where their data lives.

``tickwave status`` shows both; the supervisor records the disk figures in the warehouse for
the ops board (``service_events`` rows ``disk_free``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import psutil

from adapters.process_memory import resident_bytes
from app.services.supervisor import ManagedService, Supervisor
from execution.journal import journal_dir
from tickwave.config import Settings


def memory_bytes(pid: int) -> int | None:
    """Memory held by ``pid`` and its descendants (the dataflow's workers, Dagster's daemon), or None if gone."""
    try:
        process = psutil.Process(pid)
        total = resident_bytes(process)
        for child in process.children(recursive=True):
            try:
                total += resident_bytes(child)
            except psutil.Error:  # a child that ended meanwhile
                continue
    except psutil.Error:
        return None
    return total


def data_paths(settings: Settings, services: Iterable[ManagedService]) -> dict[str, Path]:
    """The directories holding the platform's data: the embedded broker's and warehouse's, and the journal."""
    supervisor = Supervisor(settings)
    paths = {
        service.name: supervisor.data_dir(service)
        for service in services
        if service.holds_data and not service.external_address
    }
    paths["journal"] = journal_dir(settings.state_path, settings.execution.instance_id)
    return paths
