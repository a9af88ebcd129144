"""``tickwave report verify``: both chains, recomputed from the warehouse and the files; the first break named.

Three checks, each naming its first break: (1) the order-event hash chain in the warehouse
(:mod:`reports.events`); (2) every report file against its manifest's SHA-256 and every
manifest against the previous day's (:func:`reports.manifest.verify_files`); (3) each
reported day's chain heads and source row counts in the warehouse against what its
manifest recorded, so an event added or removed after the report is caught even at a
chain's end.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

from clickhouse_connect.driver.client import Client

from reports.events import first_event_break, head_break, source_rows
from reports.manifest import MANIFEST_NAME, chained_days, verify_files


def verify(client: Client, root: Path, day: date | None = None) -> list[str]:
    """Return the breaks found (empty when both chains and every file recompute)."""
    problems = []
    # The files are hashed here while the warehouse recomputes the chain (no shared state).
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="verify-files") as background:
        hashed = background.submit(verify_files, root)
        found = first_event_break(client, day)
        broken_file = hashed.result()
    if found is not None:
        problems.append(f"order events: {found}")
    if broken_file is not None:
        problems.append(f"report files: {broken_file}")
    for reported, path in chained_days(root):
        if day is not None and reported != day:
            continue
        manifest = json.loads((path / MANIFEST_NAME).read_bytes())
        broken_head = head_break(client, reported, manifest.get("chain_heads", {}))
        if broken_head is not None:
            problems.append(f"manifest vs warehouse: {broken_head}")
            break
        current = source_rows(client, reported)
        differing = [
            f"{name} {manifest['source_rows'].get(name)} -> {count}"
            for name, count in current.items()
            if manifest["source_rows"].get(name) != count
        ]
        if differing:
            problems.append(
                f"manifest vs warehouse: {reported}: source rows changed since the report: " + ", ".join(differing)
            )
            break
    if day is not None and not (root / day.isoformat() / MANIFEST_NAME).is_file():
        problems.append(f"report files: no reports for {day} under {root}")
    return problems
