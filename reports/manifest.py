"""Each day's manifest: what was produced, from what, chained to the previous day's manifest.

``manifest.json`` lists every file of the day with its SHA-256 and row count, the source
tables' row counts for the day, the head of each order-event hash chain at the day's
end, the dbt and Tickwave versions, and the SHA-256 of the previous day's manifest (the
latest earlier day in the same reports folder). It holds no generation time, so a re-run
over the same data writes the same bytes. Pure functions over bytes and files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from tickwave.audit_chain import GENESIS_HASH

MANIFEST_NAME = "manifest.json"
PRUNED_NAME = "pruned.json"  # the newest pruned day and its manifest's SHA-256 (reports/retention.py)
FORMAT_VERSION = 1


def sha256_file(path: Path) -> str:
    """Return a file's SHA-256 (hex)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def encode_manifest(manifest: dict[str, Any]) -> bytes:
    """Return the manifest's canonical bytes (sorted keys, two-space indent, a final newline)."""
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


@dataclass(frozen=True)
class ChainHead:
    """The last order event of a chain on or before the day's end."""

    chain_id: str
    seq: int
    hash: str


def build_manifest(
    day: date,
    files: dict[str, tuple[str, int]],
    source_rows: dict[str, int],
    heads: list[ChainHead],
    previous_sha256: str,
    versions: dict[str, str],
) -> dict[str, Any]:
    """Return the manifest of ``day``: files (name -> sha256, rows), sources, chain heads, the previous link."""
    return {
        "format_version": FORMAT_VERSION,
        "report_date": day.isoformat(),
        "files": {name: {"sha256": sha, "rows": rows} for name, (sha, rows) in sorted(files.items())},
        "source_rows": dict(sorted(source_rows.items())),
        "chain_heads": {head.chain_id: {"seq": head.seq, "hash": head.hash} for head in heads},
        "previous_manifest_sha256": previous_sha256,
        "versions": dict(sorted(versions.items())),
    }


def day_dirs(root: Path) -> list[tuple[date, Path]]:
    """Return the days under ``root`` that hold a manifest, oldest first."""
    found = []
    for path in root.iterdir() if root.is_dir() else ():
        try:
            day = date.fromisoformat(path.name)
        except ValueError:
            continue
        if (path / MANIFEST_NAME).is_file():
            found.append((day, path))
    return sorted(found)


def chain_anchor(root: Path) -> tuple[date | None, str]:
    """Return where the manifest chain under ``root`` starts: the newest pruned day and its manifest's SHA-256.

    ``(None, genesis hash)`` when no day was ever pruned. Days up to the pruned day are not part of the chain.
    """
    path = root / PRUNED_NAME
    if not path.is_file():
        return None, GENESIS_HASH
    pruned = json.loads(path.read_bytes())
    return date.fromisoformat(pruned["through"]), str(pruned["manifest_sha256"])


def chained_days(root: Path) -> list[tuple[date, Path]]:
    """Return the days under ``root`` the manifest chain covers (after the newest pruned day), oldest first."""
    through, _ = chain_anchor(root)
    return [(day, path) for day, path in day_dirs(root) if through is None or day > through]


def previous_manifest_sha256(root: Path, day: date) -> str:
    """Return the SHA-256 of the latest manifest before ``day`` under ``root`` (the chain's anchor if none)."""
    earlier = [path for found, path in chained_days(root) if found < day]
    if earlier:
        return sha256_file(earlier[-1] / MANIFEST_NAME)
    through, anchor = chain_anchor(root)
    return anchor if through is not None and through < day else GENESIS_HASH


def changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Say, line by line, what differs between two manifests of the same day (empty when nothing does)."""
    lines = []
    for key in ("source_rows",):
        for name in sorted(set(old.get(key, {})) | set(new.get(key, {}))):
            before, after = old.get(key, {}).get(name), new.get(key, {}).get(name)
            if before != after:
                lines.append(f"source {name}: {before} -> {after} rows")
    for chain_id in sorted(set(old.get("chain_heads", {})) | set(new.get("chain_heads", {}))):
        before, after = old.get("chain_heads", {}).get(chain_id), new.get("chain_heads", {}).get(chain_id)
        if before != after:
            lines.append(f"chain {chain_id} head: {before} -> {after}")
    for name in sorted(set(old.get("files", {})) | set(new.get("files", {}))):
        before, after = old.get("files", {}).get(name), new.get("files", {}).get(name)
        if before != after:
            rows = f" ({before['rows'] if before else 'none'} -> {after['rows'] if after else 'none'} rows)"
            lines.append(f"file {name} changed{rows}")
    for key in ("versions", "previous_manifest_sha256"):
        if old.get(key) != new.get(key):
            lines.append(f"{key}: {old.get(key)} -> {new.get(key)}")
    return lines


def verify_files(root: Path) -> str | None:
    """Recompute every day's files and the manifest chain under ``root``; return the first break in words."""
    _, previous = chain_anchor(root)
    for day, path in chained_days(root):
        manifest_path = path / MANIFEST_NAME
        manifest = json.loads(manifest_path.read_bytes())
        if manifest.get("previous_manifest_sha256") != previous:
            return f"{day}: the manifest does not chain to the previous day's manifest (changed, added or removed?)"
        for name, entry in manifest.get("files", {}).items():
            file = path / name
            if not file.is_file():
                return f"{day}: {name} is missing"
            if sha256_file(file) != entry["sha256"]:
                return f"{day}: {name} does not match its SHA-256 in the manifest (changed?)"
        previous = sha256_file(manifest_path)
    return None
