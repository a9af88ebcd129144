"""Report folders pruned by age: the old days go, the kept days' manifest chain still verifies."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from reports.manifest import (
    MANIFEST_NAME,
    PRUNED_NAME,
    encode_manifest,
    previous_manifest_sha256,
    sha256_file,
    verify_files,
)
from reports.retention import prune_days

TODAY = date(2026, 11, 23)


def write_days(root: Path, first: date, count: int) -> list[date]:
    """Write ``count`` chained days of one small report each, as the daily job does."""
    days = [first + timedelta(days=n) for n in range(count)]
    for day in days:
        folder = root / day.isoformat()
        folder.mkdir(parents=True)
        (folder / "trade_blotter.csv").write_text(f"day\n{day}\n")
        report = {"sha256": sha256_file(folder / "trade_blotter.csv"), "rows": 1}
        manifest = {
            "previous_manifest_sha256": previous_manifest_sha256(root, day),
            "files": {"trade_blotter.csv": report},
        }
        (folder / MANIFEST_NAME).write_bytes(encode_manifest(manifest))
    return days


def kept(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir() if (path / MANIFEST_NAME).is_file())


def test_prune_days_when_days_are_older_than_the_age_then_deleted_and_the_chain_still_verifies(tmp_path: Path) -> None:
    days = write_days(tmp_path, TODAY - timedelta(days=9), 9)  # nine days up to yesterday

    deleted = prune_days(tmp_path, 5, TODAY)

    assert deleted == days[:4]  # kept while today - day <= 5
    assert kept(tmp_path) == [day.isoformat() for day in days[4:]]
    assert verify_files(tmp_path) is None
    assert prune_days(tmp_path, 5, TODAY) == []  # nothing older left


def test_prune_days_when_the_anchor_is_lost_then_verification_names_the_broken_chain(tmp_path: Path) -> None:
    write_days(tmp_path, TODAY - timedelta(days=9), 9)
    prune_days(tmp_path, 5, TODAY)

    (tmp_path / PRUNED_NAME).unlink()

    assert "does not chain" in (verify_files(tmp_path) or "")


def test_prune_days_when_a_kept_day_changes_then_verification_still_sees_it(tmp_path: Path) -> None:
    days = write_days(tmp_path, TODAY - timedelta(days=9), 9)
    prune_days(tmp_path, 5, TODAY)

    (tmp_path / days[-1].isoformat() / "trade_blotter.csv").write_text("day\nforged\n")

    assert "does not match its SHA-256" in (verify_files(tmp_path) or "")


def test_prune_days_when_later_days_are_written_then_they_chain_to_the_kept_ones(tmp_path: Path) -> None:
    days = write_days(tmp_path, TODAY - timedelta(days=9), 9)
    prune_days(tmp_path, 5, TODAY)

    write_days(tmp_path, TODAY, 1)
    prune_days(tmp_path, 3, TODAY + timedelta(days=1))  # the anchor moves forward

    assert kept(tmp_path) == [day.isoformat() for day in (*days[-2:], TODAY)]
    assert verify_files(tmp_path) is None


def test_prune_days_when_every_day_is_pruned_then_the_next_day_chains_to_the_anchor(tmp_path: Path) -> None:
    write_days(tmp_path, TODAY - timedelta(days=9), 3)
    prune_days(tmp_path, 1, TODAY)

    write_days(tmp_path, TODAY, 1)

    assert kept(tmp_path) == [TODAY.isoformat()]
    assert verify_files(tmp_path) is None
