"""``python -m execution [audit]``: run the execution process (or the audit loader) until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType

from tickwave.config import load_settings
from tickwave.errors import TickwaveError


def main() -> int:
    """Load the settings once, run until stopped; exit 2 on bad configuration, 1 on other errors."""
    try:
        settings = load_settings()
    except TickwaveError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logging.getLogger("execution").info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    is_audit = sys.argv[1:] == ["audit"]
    try:
        if is_audit:
            from execution.app import run_audit

            run_audit(settings, stop)
        else:
            from execution.app import run

            run(settings, stop)
    except TickwaveError as exc:
        logging.getLogger("execution").error("execution ended on an error: %s", exc)
        return 1
    logging.getLogger("execution").info("%s stopped", "the audit loader" if is_audit else "execution")
    return 0


if __name__ == "__main__":
    sys.exit(main())
