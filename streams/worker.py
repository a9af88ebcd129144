"""One Bytewax process of a multi-process dataflow: ``python -m streams.worker`` (started by the runner).

What ``python -m bytewax.run`` does for the flow of :func:`streams.app.make_flow`, with the
stop of :mod:`streams.shutdown`: on SIGTERM or SIGINT the process ends with one line saying
it stopped, not with the step error and traceback Bytewax's own entry point prints.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence
from datetime import timedelta

from streams.shutdown import install_stop_handler, is_requested_stop, run_dataflow

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    """Run process ``--index`` of ``--processes`` until the input ends or a stop is asked for."""
    from bytewax.errors import BytewaxRuntimeError
    from bytewax.recovery import RecoveryConfig

    from streams.app import make_flow

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=int, required=True, help="this process's index among the addresses")
    parser.add_argument("--addresses", required=True, help="every process's host:port, ';'-separated")
    parser.add_argument("--recovery-dir", required=True, help="the recovery store every process shares")
    parser.add_argument("--snapshot-interval-s", type=float, required=True)
    parser.add_argument("--tail", choices=("true", "false"), default="true", help="false: stop at the input's end")
    arguments = parser.parse_args(argv)
    stopping = threading.Event()
    install_stop_handler(stopping)
    addresses = arguments.addresses.split(";")
    flow = make_flow(arguments.tail, len(addresses), arguments.index)
    try:
        run_dataflow(
            flow,
            timedelta(seconds=arguments.snapshot_interval_s),
            RecoveryConfig(arguments.recovery_dir, timedelta(0)),  # type: ignore[no-untyped-call]
            addresses,
            arguments.index,
        )
    except (KeyboardInterrupt, BytewaxRuntimeError) as exc:
        if not is_requested_stop(exc, stopping):
            raise
        logger.info("bytewax process %d stopped; the next start resumes from the last snapshot", arguments.index)
    return 0


if __name__ == "__main__":
    sys.exit(main())
