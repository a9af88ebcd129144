"""When yesterday's reports are late."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest

from reports.due import due_time, late_day
from reports.manifest import MANIFEST_NAME

DUE = time(1, 0)


@pytest.mark.parametrize(
    ("now", "has_manifest", "late"),
    [
        (datetime(2026, 11, 21, 0, 59, 59, tzinfo=UTC), False, None),  # not due yet
        (datetime(2026, 11, 21, 1, 0, tzinfo=UTC), False, date(2026, 11, 20)),  # due: missing
        (datetime(2026, 11, 21, 23, 0, tzinfo=UTC), True, None),  # there
        (datetime(2026, 1, 1, 3, 0, tzinfo=UTC), False, date(2025, 12, 31)),  # across a year
    ],
)
def test_late_day_when_past_due_then_only_a_missing_yesterday_is_late(
    tmp_path: Path, now: datetime, has_manifest: bool, late: date | None
) -> None:
    yesterday = tmp_path / "2026-11-20"
    yesterday.mkdir()
    if has_manifest:
        (yesterday / MANIFEST_NAME).write_text("{}")

    assert late_day(now, tmp_path, DUE) == late


def test_due_time_when_parsed_then_hours_and_minutes() -> None:
    assert due_time("01:00") == time(1, 0) and due_time("23:45") == time(23, 45)
