"""Report folders pruned by age, the manifest chain still verifiable from where it now starts.

Each day's manifest holds the SHA-256 of the previous day's, so deleting the oldest days would
leave the first kept day chained to a manifest that is gone. Pruning first records the newest
pruned day and its manifest's SHA-256 in ``<reports>/pruned.json``; verification then starts the
chain from that hash instead of the genesis hash (:func:`reports.manifest.chain_anchor`), and days
up to it are no longer part of the chain. An interrupted prune leaves old folders behind, which the
next prune deletes; what verification sees is the same either way.
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import date, timedelta
from pathlib import Path

from reports.daily import write_index
from reports.manifest import MANIFEST_NAME, PRUNED_NAME, chain_anchor, day_dirs, sha256_file


def prune_days(root: Path, keep_days: int, today: date) -> list[date]:
    """Delete the day folders under ``root`` older than ``keep_days`` before ``today``; return the days deleted.

    Args:
        root: the reports folder (``<state dir>/reports``).
        keep_days: a day is kept while ``today - day <= keep_days`` (``retention.reports_days``).
        today: the current UTC date.
    """
    cutoff = today - timedelta(days=keep_days)
    old = [(day, path) for day, path in day_dirs(root) if day < cutoff]
    if not old:
        return []
    through, _ = chain_anchor(root)
    newest_day, newest_path = old[-1]
    if through is None or newest_day > through:
        anchor = {"through": newest_day.isoformat(), "manifest_sha256": sha256_file(newest_path / MANIFEST_NAME)}
        staged = root / f".{PRUNED_NAME}.tmp"
        staged.write_text(json.dumps(anchor, sort_keys=True, indent=2) + "\n")
        os.replace(staged, root / PRUNED_NAME)  # the anchor is in place before any folder goes
    for _, path in old:
        shutil.rmtree(path)
    write_index(root)
    return [day for day, _ in old]
