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

# The longest test files, longest first (seconds of one worker each, measured on 2 busy cores with
# --junitxml and summed per file). With --dist loadfile a worker takes a whole file at a time in the
# order collected: a long file handed out last kept one worker busy minutes after the others had
# finished, so these go first and the short files fill the gaps. Files not named keep their order.
LONGEST_FILES = (
    "tests/integration/orchestration/test_orchestrate.py",  # 158
    "tests/chaos/test_chaos.py",  # 135
    "tests/integration/platform/test_kafka_sasl_ssl.py",  # 134
    "tests/integration/platform/test_cli_lifecycle.py",  # 130
    "tests/integration/execution/test_broker_flood.py",  # 119
    "tests/integration/orchestration/test_materialize.py",  # 103
    "tests/integration/orchestration/test_launchpad.py",  # 82
    "tests/integration/streams/test_processes.py",  # 76
    "tests/integration/reports/test_daily.py",  # 67
    "tests/integration/warehouse/test_clickhouse_connect.py",  # 65
    "tests/integration/platform/test_supervision.py",  # 63
    "tests/integration/orchestration/test_dbt_unit_tests.py",  # 59
    "tests/integration/orchestration/test_mart_retention.py",  # 56
    "tests/integration/warehouse/test_request_bounds.py",  # 55
    "tests/integration/warehouse/test_jdbc.py",  # 55
    "tests/integration/orchestration/test_quality_gate.py",  # 53
    "tests/integration/platform/test_stack.py",  # 49
    "tests/integration/dashboards/test_position_panels.py",  # 47
    "tests/integration/streams/test_loader.py",  # 47
    "tests/integration/execution/test_fast_replay_parity.py",  # 47
)


def pytest_configure(config: pytest.Config) -> None:
    """Keep the files in the order collected (below) when xdist hands them out, not ordered by test count."""
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the longest files first, each file's tests kept together and in their order."""
    rank = {path: index for index, path in enumerate(LONGEST_FILES)}
    position = {id(item): index for index, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(item.nodeid.split("::", 1)[0], len(rank)), position[id(item)]))


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
