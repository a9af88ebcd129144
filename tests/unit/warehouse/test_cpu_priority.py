"""The embedded warehouse lowers its own CPU priority and its session's (Linux autogroup)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import os
from pathlib import Path
from warehouse_server.server import lower_cpu_priority
lower_cpu_priority(7)
autogroup = Path("/proc/self/autogroup")
print(os.nice(0), autogroup.read_text().split()[-1] if autogroup.exists() else "none")
"""


def test_lower_cpu_priority_when_called_in_its_own_session_then_process_and_session_niced() -> None:
    # A session of its own, as the supervisor starts the warehouse: the test run's session keeps its priority.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, start_new_session=True, timeout=60, check=True
    )

    niceness, session_niceness = result.stdout.split()
    assert int(niceness) >= 7
    if Path("/proc/self/autogroup").exists():
        assert session_niceness == "7"
