"""Test-wide fixtures: the real embedded services, started once per run (per xdist worker) on free ports.

Fixtures live in ``tests/plugins/<area>.py``; add a module to ``pytest_plugins`` below.
"""

import os
import signal

import pytest

from app import core_build

# rich reads the width once, when the CLI's console is made: without a terminal (CI, xdist workers) it
# would be 80 columns and wrap the lines tests look for. Set before any test module imports the CLI.
os.environ["COLUMNS"] = "200"

pytest_plugins = ["tests.plugins.services", "tests.plugins.warehouse", "tests.plugins.postgres", "tests.plugins.mlflow"]

_SIGTERM_AT_START = signal.getsignal(signal.SIGTERM)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to test an execution core built from other sources than these (its rules would not be the ones read)."""
    if not core_build.is_fresh():
        pytest.exit("the execution core (Rust) is not built from these sources: run make bootstrap", returncode=4)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Start each test with SIGTERM as the run started, if an earlier one left it ignored.

    Dagster, run in the test process, maps SIGTERM to SIGINT's handler, and an xdist worker ignores
    SIGINT: SIGTERM stayed ignored, and so did it in every process the worker started afterwards
    (an ignored signal survives exec), which SIGTERM then could not stop.
    """
    if signal.getsignal(signal.SIGTERM) is signal.SIG_IGN and _SIGTERM_AT_START is not signal.SIG_IGN:
        signal.signal(signal.SIGTERM, _SIGTERM_AT_START)
