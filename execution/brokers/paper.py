"""The paper venue's file: the ledger the simulated broker keeps under the state dir.

The venue itself (fills, positions, cash, P&L) is the core's :class:`~execution.core.paper.PaperBroker`;
this module only opens the file it keeps its orders in, as the MT5 modules beside it open the terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from execution.core.paper import PaperBroker
from execution.journal import Journal
from tickwave.clock import Clock
from tickwave.config import ExecutionSettings
from tickwave.instruments import Instrument

LEDGER_NAME: Final = "paper_ledger.jsonl"


def open_paper_broker(
    settings: ExecutionSettings,
    clock: Clock,
    ledger_path: Path,
    instruments: Mapping[str, Instrument] | None = None,
) -> PaperBroker:
    """Open the ledger at ``ledger_path`` (creating it; written, not fsynced) and rebuild the venue from it."""
    return PaperBroker(settings, clock, Journal(ledger_path, fsync=False), instruments)
