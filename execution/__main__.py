"""``python -m execution [audit]``: run the execution process (or the audit loader) until SIGTERM/SIGINT.

The same process as ``tickwave execution run|audit`` (both call :func:`execution.app.serve`),
without the command line's imports: plain log lines, one a record.
"""

from __future__ import annotations

import logging
import sys

from adapters.private_files import keep_private
from tickwave.config import load_settings
from tickwave.errors import TickwaveError

USAGE = "usage: python -m execution [audit]"


def main(arguments: list[str]) -> int:
    """Load the settings once, run until stopped; exit 2 on bad arguments or configuration, 1 on other errors."""
    keep_private()  # the journal and the paper ledger: the owner's only
    if arguments not in ([], ["audit"]):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except TickwaveError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    from execution.app import serve

    return serve(settings, is_audit_loader=arguments == ["audit"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
