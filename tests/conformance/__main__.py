"""``make conformance``: the official clients' own suites against a fresh embedded warehouse.

    python -m tests.conformance [--suite clickhouse-connect|dbt-clickhouse|clickhouse-go] [--sources DIR]

Prints each suite's counts (the closing lines) and where its report and log are; the table of what
still differs, with the last counts, is in warehouse_server/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from adapters.endpoints import LOOPBACK
from adapters.warehouse.credentials import resolve_credentials
from tests.conformance.suites import (
    CLICKHOUSE_CONNECT,
    CLICKHOUSE_GO,
    DBT_CLICKHOUSE,
    Counts,
    Target,
    cache_dir,
    run_go_suite,
    run_python_suite,
)
from tests.plugins.warehouse import start_warehouse
from tickwave.config import load_settings
from tickwave.errors import TickwaveError

SUITES = (CLICKHOUSE_CONNECT.name, DBT_CLICKHOUSE.name, CLICKHOUSE_GO.name)
STANDARD_NATIVE_PORT = 9000  # ClickHouse's; clickhouse-connect's wrong-port test sends HTTP to it by number


def _native_port() -> int:
    # The suites assume a server on ClickHouse's own ports: the native one where it is free, else any free port.
    with contextlib.suppress(OSError), socket.create_server((LOOPBACK, STANDARD_NATIVE_PORT)):
        return STANDARD_NATIVE_PORT
    return 0


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM unwinds like Ctrl-C, so the warehouse started here is stopped on the way out.
    raise KeyboardInterrupt


def main() -> int:
    """Run the suites asked for (all by default) and print their counts."""
    signal.signal(signal.SIGTERM, _interrupt)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", action="append", choices=SUITES, help="a suite to run (repeatable; default: all)")
    parser.add_argument("--sources", type=Path, help="a folder holding <suite>-<version>/ of the pytest suites")
    arguments = parser.parse_args()
    chosen = arguments.suite or list(SUITES)
    results = cache_dir() / "results" / time.strftime("%Y%m%dT%H%M%S")
    results.mkdir(parents=True, exist_ok=True)
    lines = []
    with tempfile.TemporaryDirectory(prefix="tickwave-conformance-") as state:
        # The engine keeps system.query_log here, as a ClickHouse server does by default: the suites
        # read it (dbt's projections); the project's default is off (warehouse_server/README.md).
        supervisor, service, endpoint = start_warehouse(
            Path(state), native_port=_native_port(), engine_query_log_days=1
        )
        try:
            credentials = resolve_credentials(load_settings(state_dir=Path(state)))
            host, port = endpoint.address.rsplit(":", 1)
            password = credentials.password.get_secret_value()
            target = Target(host, int(port), credentials.user, password, endpoint.ports.get("native"))
            for name in chosen:
                started = time.monotonic()
                counts = _run(name, target, arguments.sources, results)
                line = counts.line(name) + f" in {time.monotonic() - started:.0f} s"
                lines.append(line)
                print(line, flush=True)
        finally:
            supervisor.stop(service)
    print(f"\nreports and logs: {results}")
    for line in lines:
        print(line)
    return 0


def _run(name: str, target: Target, sources: Path | None, results: Path) -> Counts:
    try:
        if name == CLICKHOUSE_GO.name:
            counts = run_go_suite(CLICKHOUSE_GO, target, results)
        else:
            suite = CLICKHOUSE_CONNECT if name == CLICKHOUSE_CONNECT.name else DBT_CLICKHOUSE
            counts = run_python_suite(suite, target, sources, results)
    except (TickwaveError, OSError, subprocess.SubprocessError) as exc:
        return Counts(note=f"could not run: {exc}")
    (results / f"{name}.failed.txt").write_text("\n".join(counts.failures) + "\n")
    return counts


if __name__ == "__main__":
    raise SystemExit(main())
