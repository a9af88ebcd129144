"""When a day's reports are late: a pure function of the clock, the reports folder and the due time."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from pathlib import Path

from reports.manifest import MANIFEST_NAME


def due_time(text: str) -> time:
    """Parse a ``HH:MM`` due time (UTC), as ``orchestration.late_reports_sensor_utc`` holds it."""
    hours, minutes = (int(part) for part in text.split(":"))
    return time(hours, minutes)


def late_day(now: datetime, root: Path, due: time) -> date | None:
    """Return yesterday (UTC) when it is past ``due`` today and yesterday has no manifest under ``root``.

    Args:
        now: the current time, timezone-aware UTC.
        root: the reports folder (``<state dir>/reports``).
        due: the time of day (UTC) by which yesterday's reports must exist.
    """
    yesterday = now.date() - timedelta(days=1)
    if now.timetz().replace(tzinfo=None) < due:
        return None
    return None if (root / yesterday.isoformat() / MANIFEST_NAME).is_file() else yesterday
