"""The embedded warehouse lowers its own CPU priority and its session's (Linux autogroup)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import os
import threading
from pathlib import Path
from warehouse_server.query.priority import lower_cpu_priority
started, done = threading.Event(), threading.Event()
def earlier() -> None:
    started.set()
    done.wait(30)
thread = threading.Thread(target=earlier)
thread.start()
started.wait(30)
lower_cpu_priority(7)
autogroup = Path("/proc/self/autogroup")
earlier_niceness = os.getpriority(os.PRIO_PROCESS, thread.native_id)
done.set()
print(os.nice(0), earlier_niceness, autogroup.read_text().split()[-1] if autogroup.exists() else "none")
"""


def test_lower_cpu_priority_when_called_in_its_own_session_then_every_thread_and_session_niced() -> None:
    # A session of its own, as the supervisor starts the warehouse: the test run's session keeps its priority.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, start_new_session=True, timeout=60, check=True
    )

    niceness, earlier_niceness, session_niceness = result.stdout.split()
    assert int(niceness) >= 7
    assert int(earlier_niceness) >= 7  # a thread started before the call yields too
    if Path("/proc/self/autogroup").exists():
        assert session_niceness == "7"
