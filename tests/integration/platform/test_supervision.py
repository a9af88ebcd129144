"""`tickwave up` supervises its services: kill -9 is followed by a restart with backoff,
whatever the moment (while `up` still starts the others, as `up` returns, later), a crash loop
stops the restarts and says why in `tickwave status`, and every crash, restart and give-up is
a row of the warehouse's `service_events`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import psutil

from adapters.disk import DISK_FREE_EVENT, MEMORY_EVENT
from adapters.endpoints import free_port
from adapters.warehouse.client import connect
from app.services.watchdog import SUPERVISOR_NAME
from dashboards.alerts import disk_low_alert_sql
from tests.integration.platform.private_state import open_entries, umask_of
from tests.integration.platform.test_cli_lifecycle import (  # noqa: F401 - the fixture
    TICKWAVE,
    cli_env,
    exited,
    run,
)
from tests.integration.platform.test_local_surface import beyond_loopback, listening
from tickwave.config import Settings, load_settings

SERVICES = ("kafka", "warehouse", "streams", "execution", "audit", "orchestration", "supervisor")


def service_pid(env: dict[str, str], name: str) -> int | None:
    try:
        return int(json.loads((Path(env["TICKWAVE_STATE_DIR"]) / "run" / f"{name}.json").read_text())["pid"])
    except (FileNotFoundError, ValueError):
        return None


def wait_for_new_pid(env: dict[str, str], name: str, before: int | None, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        after = service_pid(env, name)
        if after is not None and after != before:
            return after
        time.sleep(0.1)
    raise AssertionError(f"{name} had no new process within {timeout_s} s")


def kill_and_wait_for_restart(env: dict[str, str], name: str, timeout_s: float = 90) -> tuple[int, int, float]:
    before = service_pid(env, name)
    assert before is not None
    killed_at = time.monotonic()
    os.kill(before, signal.SIGKILL)
    after = wait_for_new_pid(env, name, before, timeout_s)
    return before, after, time.monotonic() - killed_at


def wait_for_event(settings: Settings, service: str, event: str, timeout_s: float) -> None:
    """Wait until the warehouse's ``service_events`` holds ``event`` of ``service`` (the checks after it say if not)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        client = connect(settings)
        try:
            query = "SELECT count() FROM service_events WHERE service = {service:String} AND event = {event:String}"
            if client.query(query, parameters={"service": service, "event": event}).result_rows[0][0]:
                return
        finally:
            client.close()
        time.sleep(0.2)


def umasks_of_trees(pids: list[int]) -> dict[int, str]:
    """The umask of each of ``pids`` and of each of their descendants (those that end meanwhile left out)."""
    found = {}
    for pid in pids:
        try:
            tree = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in tree:
            try:
                found[process.pid] = umask_of(process.pid)
            except FileNotFoundError:
                continue
    return found


def memory_mb(shown: str, service: str) -> int:
    """The `memory MB` cell of ``service``'s row in `tickwave status`'s table."""
    lines = shown.splitlines()
    header = [cell.strip() for cell in next(line for line in lines if "memory MB" in line).split("┃")]
    row = next(line for line in lines if line.startswith(f"│ {service} "))
    return int([cell.strip() for cell in row.split("│")][header.index("memory MB")])


def up_killing_streams_and_hanging_audit(env: dict[str, str]) -> tuple[str, int, int]:
    """Run `up`; kill -9 the dataflow once it is recorded ready, while `up` still starts the others, and hang
    the audit loader (SIGSTOP: alive, but its health report goes stale after 3 intervals of 5 s) once it is.

    The supervisor starts last, so its first look finds the dataflow's stale record, and the audit loader's
    report ageing (stale then, or soon after). Returns `up`'s output, the killed pid and the hung one.
    """
    starting = subprocess.Popen([TICKWAVE, "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = wait_for_new_pid(env, "streams", None, timeout_s=240)
        os.kill(killed, signal.SIGKILL)
        assert service_pid(env, SUPERVISOR_NAME) is None  # killed before the watcher existed
        hung = wait_for_new_pid(env, "audit", None, timeout_s=240)  # recorded after its first health report
        os.kill(hung, signal.SIGSTOP)
        out, err = starting.communicate(timeout=300)
    finally:
        if starting.poll() is None:
            starting.kill()
            starting.wait()
    assert starting.returncode == 0, out + err
    return out, killed, hung


def test_supervisor_when_a_service_is_killed_then_restarted_and_a_crash_loop_stops_with_a_reason(
    cli_env: dict[str, str],  # noqa: F811 - the fixture
) -> None:
    # Dagster runs under `up` here too (as a service with its address in status; one `up` for both checks).
    port = free_port()
    env = cli_env  # updated in place: the fixture's `down` then stops Dagster too, also after a failure
    env |= {
        "TICKWAVE_SUPERVISION_MAX_RESTARTS": "2",
        "TICKWAVE_SUPERVISION_BACKOFF_INITIAL_S": "0.2",
        "TICKWAVE_SUPERVISION_CHECK_INTERVAL_S": "0.2",
        "TICKWAVE_SUPERVISION_STALL_RESTART_S": "1",
        "TICKWAVE_SUPERVISION_STOP_GRACE_S": "1",
        "TICKWAVE_ORCHESTRATION_ENABLED": "true",
        "TICKWAVE_ORCHESTRATION_PORT": str(port),
        # no scheduled dbt run competing with the restarts timed here (schedules: test_orchestrate.py)
        "TICKWAVE_ORCHESTRATION_SCHEDULES_ENABLED": "false",
    }
    started, streams_killed, hung = up_killing_streams_and_hanging_audit(env)
    up_returned = time.monotonic()
    first = kill_and_wait_for_restart(env, "execution")  # killed within 2 s of `up` returning
    assert first[2] < 30, first
    streams_back = wait_for_new_pid(env, "streams", streams_killed, timeout_s=60)
    streams_back_s = time.monotonic() - up_returned
    assert "supervisor" in started
    orchestration = json.loads((Path(env["TICKWAVE_STATE_DIR"]) / "run" / "orchestration.json").read_text())
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=30) as answer:
        assert "dagster_webserver_version" in json.loads(answer.read())
    shown = run(env, "status").stdout
    row = next(line for line in shown.splitlines() if "orchestration" in line)
    assert " up " in f" {row} " and f"127.0.0.1:{port}" in row, row
    # each schedule's state from Dagster, here as orchestration.schedules_enabled = false leaves them
    reports = next(line for line in shown.splitlines() if "compliance_reports_daily" in line)
    assert "STOPPED" in reports and "30 0 * * * UTC" in reports, shown
    # memory per service (Kafka's JVM, Dagster's process tree) and the data's one volume, shown once
    assert memory_mb(shown, "kafka") > 50 and memory_mb(shown, "orchestration") > 100, shown
    disks = [line for line in shown.splitlines() if line.startswith("disk ")]
    assert len(disks) == 1 and "(kafka, warehouse, journal)" in disks[0] and " GB free of " in disks[0], shown
    assert "warehouse active parts, busiest partition: " in shown and "inserts slow down past 150" in shown, shown
    low = run({**env, "TICKWAVE_SUPERVISION_DISK_FREE_ALERT_PCT": "100"}, "status").stdout
    assert "disk low (under 100 %)" in low, low

    deadline = time.monotonic() + 90  # the audit loader hung during `up` is restarted
    while time.monotonic() < deadline and service_pid(env, "audit") in (hung, None):
        time.sleep(0.2)
    assert service_pid(env, "audit") not in (hung, None), "the hung audit loader was not restarted"
    # Every socket `up`'s processes (and their children: Kafka's JVM, Dagster's webserver) listen on is
    # loopback's; read once the hung audit loader is back (while it is restarted it has no process).
    running = [pid for name in SERVICES if (pid := service_pid(env, name)) is not None]
    sockets = [entry for pid in running for entry in listening(pid)]
    assert len(running) == len(SERVICES) and port in {found for _, _, found in sockets}, (running, sockets)
    assert beyond_loopback(sockets) == []
    # Each of them and their children (Dagster's code server, webserver and daemon; those the supervisor
    # restarted) create files for their owner only.
    assert {pid: umask for pid, umask in umasks_of_trees(running).items() if umask != "0077"} == {}

    second = kill_and_wait_for_restart(env, "execution")
    os.kill(second[1], signal.SIGKILL)  # the third crash within the window: a crash loop
    deadline = time.monotonic() + 30
    while (
        time.monotonic() < deadline
        and not (Path(env["TICKWAVE_STATE_DIR"]) / "run" / "execution.gave_up.json").exists()
    ):
        time.sleep(0.2)
    settings = load_settings(
        state_dir=env["TICKWAVE_STATE_DIR"], clickhouse={"port": int(env["TICKWAVE_CLICKHOUSE_PORT"])}
    )
    wait_for_event(settings, "execution", "gave_up", timeout_s=30)  # the supervisor's events reach the warehouse
    status = run(env, "status")

    assert status.returncode == 3
    assert "gave up" in status.stdout and "crash loop" in status.stdout, status.stdout
    assert service_pid(env, "execution") is None
    client = connect(settings)
    try:
        events = client.query(
            f"SELECT event, pid, restarts FROM service_events FINAL WHERE service = 'execution' "
            f"AND event != '{MEMORY_EVENT}' ORDER BY event_at_ms"
        ).result_rows
    finally:
        client.close()
    assert [event for event, _pid, _restarts in events] == [
        "crashed",
        "restarted",
        "crashed",
        "restarted",
        "crashed",
        "gave_up",
    ]
    assert [pid for event, pid, _ in events if event == "crashed"] == [first[0], second[0], second[1]]
    assert max(restarts for _, _, restarts in events) == 2
    client = connect(settings)
    try:
        audit = client.query(
            f"SELECT event, pid, detail FROM service_events FINAL WHERE service = 'audit' "
            f"AND event != '{MEMORY_EVENT}' ORDER BY event_at_ms"
        ).result_rows
    finally:
        client.close()
    assert [(event, pid) for event, pid, _ in audit] == [("stalled", hung), ("restarted", service_pid(env, "audit"))]
    assert "hung" in audit[0][2]
    client = connect(settings)
    try:
        streams = client.query(
            f"SELECT event, pid FROM service_events FINAL WHERE service = 'streams' AND event != '{MEMORY_EVENT}' "
            "ORDER BY event_at_ms"
        ).result_rows
        # the supervisor's disk samples reach the warehouse; the ops board's alert reads them at its threshold
        disk = client.query(f"SELECT detail FROM service_events FINAL WHERE event = '{DISK_FREE_EVENT}'").result_rows
        memory = dict(
            client.query(
                f"SELECT service, max(JSONExtractFloat(detail, 'memory_mb')) FROM service_events "
                f"FINAL WHERE event = '{MEMORY_EVENT}' GROUP BY service"
            ).result_rows
        )
        low_at = {pct: client.query(disk_low_alert_sql(pct)).result_rows[0][0] for pct in (0.0, 100.0)}
    finally:
        client.close()
    assert disk and json.loads(disk[0][0])["holds"] == ["kafka", "warehouse", "journal"], disk
    assert low_at == {0.0: 0, 100.0: 1}
    # and its memory samples of the services it watches (each minute: those up then), for the ops board
    assert {"kafka", "warehouse", "orchestration"} <= set(memory), memory
    assert memory["kafka"] > 50 and memory["orchestration"] > 100, memory
    assert streams == [("crashed", streams_killed), ("restarted", streams_back)]
    down = run(env, "down", timeout=120)
    assert down.returncode == 0 and "orchestration" in down.stdout
    assert exited(int(orchestration["pid"]))
    state_dir = Path(env["TICKWAVE_STATE_DIR"])
    assert (state_dir / "data" / "dagster" / "storage").is_dir()
    assert open_entries(state_dir) == []  # Dagster's storage and logs too: no bit for the group or the others
    print(
        f"execution recovered in {first[2]:.1f} s (killed as `up` returned) and {second[2]:.1f} s after kill -9; "
        f"streams (killed during `up`) was back {streams_back_s:.1f} s after `up` returned"
    )
