"""Free disk per volume holding Tickwave's data, and the one "disk low" rule.

A volume is a mounted filesystem: data directories on one mount are one volume, counted
once. Free space is what an unprivileged process may still write (``shutil.disk_usage``:
``f_bavail``), the space that runs out for the broker, the warehouse and the journal.

The rule "free under ``supervision.disk_free_alert_pct`` percent of the volume" has one
home, :func:`is_disk_low`; :func:`disk_low_sql` renders the same comparison for the ops
board's alert, and a test evaluates both on the same figures. "Disk full" is the other
rule, :func:`is_disk_full`: less free than :data:`DISK_FULL_BYTES`, where the execution
journal can no longer keep its preallocated space ahead and halts trading.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

# The supervisor's free-space sample in ``service_events`` (not a lifecycle event): its detail is
# JSON with the volume's mount, the data it holds, free_bytes, total_bytes and free_pct.
DISK_FREE_EVENT = "disk_free"
# The supervisor's memory sample of each service it watches: detail {"memory_mb": its process tree's PSS}.
MEMORY_EVENT = "memory"
SAMPLE_EVENTS = (DISK_FREE_EVENT, MEMORY_EVENT)  # the samples among the lifecycle events of ``service_events``
DISK_FULL_BYTES = 4 << 20  # less free than this: "disk full" (one step of the journal's preallocation)
# Which service stops for want of space on a volume holding each kind of data.
SERVICE_OF_DATA = {"kafka": "kafka", "warehouse": "warehouse", "journal": "execution"}


@dataclass(frozen=True)
class Volume:
    """One mounted filesystem and the data directories on it."""

    mount: str
    holds: tuple[str, ...]  # labels of the data directories on it ("kafka", "warehouse", "journal")
    free_bytes: int
    total_bytes: int

    @property
    def free_pct(self) -> float:
        """Free space in percent of the volume's size (display only; the rule compares integers)."""
        return 100.0 * self.free_bytes / self.total_bytes if self.total_bytes else 0.0

    def is_low(self, alert_pct: float) -> bool:
        """Return True when the free space is under ``alert_pct`` percent of the volume."""
        return is_disk_low(self.free_bytes, self.total_bytes, alert_pct)

    @property
    def is_full(self) -> bool:
        """Return True when the volume is full (see :func:`is_disk_full`)."""
        return is_disk_full(self.free_bytes)

    @property
    def services(self) -> tuple[str, ...]:
        """The services whose data is on this volume (they stop writing when it is full)."""
        return tuple(SERVICE_OF_DATA.get(label, label) for label in self.holds)


def is_disk_full(free_bytes: int) -> bool:
    """The rule: less than ``DISK_FULL_BYTES`` free (the journal's next preallocation step would fail)."""
    return free_bytes < DISK_FULL_BYTES


def is_disk_low(free_bytes: int, total_bytes: int, alert_pct: float) -> bool:
    """The rule: free space under ``alert_pct`` percent of the volume's size (at the threshold: not low)."""
    return free_bytes * 100 < total_bytes * alert_pct


def disk_low_sql(free_bytes: str, total_bytes: str, alert_pct: float) -> str:
    """:func:`is_disk_low` as a ClickHouse condition over the expressions ``free_bytes`` and ``total_bytes``."""
    return f"({free_bytes} * 100 < {total_bytes} * {float(alert_pct)!r})"


def mount_of(path: Path) -> Path:
    """Return the mount point holding ``path`` (its nearest existing ancestor when it does not exist yet)."""
    current = path.resolve()
    while not current.exists():
        current = current.parent
    while not os.path.ismount(current):
        current = current.parent
    return current


def volumes(paths: Mapping[str, Path]) -> list[Volume]:
    """Return the distinct volumes holding ``paths`` (label to directory), sorted by mount point."""
    found: dict[Path, list[str]] = {}
    for label, path in paths.items():
        found.setdefault(mount_of(path), []).append(label)
    result = []
    for mount, labels in sorted(found.items()):
        usage = shutil.disk_usage(mount)
        result.append(Volume(str(mount), tuple(labels), free_bytes=usage.free, total_bytes=usage.total))
    return result
