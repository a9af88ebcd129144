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


SERVER_PRIORITY_PROBE = """
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from warehouse_server.query.priority import ServerPriority, lowest_thread_priority

def niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

def start_a_thread() -> int:
    # What the engine does on a call: start a thread of its own, which inherits the caller's niceness.
    seen = []
    thread = threading.Thread(target=lambda: seen.append(niceness()))
    thread.start()
    thread.join()
    return seen[0]

def fail() -> None:
    raise ValueError("handed back")

priority = ServerPriority()
with ThreadPoolExecutor(1, initializer=lowest_thread_priority) as lowest:
    own = lowest.submit(niceness).result()
    started_there = lowest.submit(priority.call, start_a_thread).result()
    try:
        lowest.submit(priority.call, fail).result()
        raised = "nothing"
    except ValueError as exc:
        raised = str(exc).replace(" ", "_")
inline = priority.call(threading.get_native_id) == threading.get_native_id()
priority.close()
print(niceness(), own, started_there, raised, inline)
"""


def test_server_priority_when_the_lowest_thread_calls_the_engine_then_threads_it_starts_keep_the_server_priority() -> (
    None
):
    result = subprocess.run(
        [sys.executable, "-c", SERVER_PRIORITY_PROBE],
        capture_output=True,
        text=True,
        start_new_session=True,
        timeout=60,
        check=True,
    )

    server, own, started_there, raised, inline = result.stdout.split()
    assert own == "19" and int(server) < 19
    assert started_there == server  # started from the server-priority thread, not from the nice-19 caller
    assert raised == "handed_back" and inline == "True"
