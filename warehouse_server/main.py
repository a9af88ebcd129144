"""``python -m warehouse_server serve``: run the embedded warehouse in the foreground.

The first stage resolves the passwords and re-executes this module with a scrubbed
environment and the passwords on an inherited pipe (:func:`warehouse_server.security.confinement.exec_scrubbed`);
the second stage takes them over and serves.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from adapters.private_files import keep_private
from adapters.warehouse.credentials import CREDENTIALS_FD_VARIABLE, resolve_credentials, take_over
from adapters.warehouse.tls import server_tls
from tickwave.config import load_settings
from tickwave.errors import ConfigurationError, TickwaveError

logger = logging.getLogger(__name__)


def serve_foreground(port: int | None, data_dir: Path | None) -> int:
    """Serve on ``port`` (default ``clickhouse.port``) over ``data_dir``; return the exit code.

    Returns 2 on a configuration error, 1 when the server cannot start, 0 after a clean stop.
    """
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    # Plain lines: this process writes into a service log file.
    logging.basicConfig(
        level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from warehouse_server.security.confinement import exec_scrubbed
    from warehouse_server.server import serve

    chosen_port = settings.clickhouse.port if port is None else port
    directory = data_dir or settings.state_path / "data" / "warehouse"
    try:
        handed = os.environ.get(CREDENTIALS_FD_VARIABLE)
        if handed is None:  # first stage: resolve the passwords, then run again without them in the environment
            server_tls(settings, create=True)  # the certificate, generated if TLS is on and none is configured
            exec_scrubbed(settings, resolve_credentials(settings, create=True), chosen_port, directory)
        serve(settings, directory, chosen_port, take_over(int(handed)))
    except TickwaveError as exc:
        logger.error("warehouse cannot start: %s", exc)
        return 1
    logger.info("warehouse stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``serve [--port N] [--data-dir DIR]`` and serve."""
    keep_private()  # the engine's parts and metadata, written by this process: the owner's only
    parser = argparse.ArgumentParser(prog="python -m warehouse_server", description="The embedded ClickHouse server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve the ClickHouse HTTP interface in the foreground")
    serve_parser.add_argument("--port", type=int, default=None, help="port on 127.0.0.1 (default: clickhouse.port)")
    serve_parser.add_argument("--data-dir", type=Path, default=None, help="directory holding the database")
    arguments = parser.parse_args(argv)
    return serve_foreground(arguments.port, arguments.data_dir)
