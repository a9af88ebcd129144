"""The warehouse process itself: what it can open, what its environment holds, its memory.

A probe process applies exactly the production confinement (``warehouse_rules`` and
``confine``), then tries to open every path of the host it could list before; whatever
opens must be granted by a rule it applied, ``/proc``, ``/sys``, ``/dev`` and ``/etc``
only file by file, and the secrets a query must never see stay shut. A real warehouse,
started the way ``tickwave up`` starts it while the password is exported in the
environment, holds no password in its environment and refuses those files to the
trusted service user. The same warehouse, capped at 1 GiB, refuses a query past the cap
and stays up, and gives a spike's memory back to the host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pydantic import SecretStr

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials
from tests.integration.warehouse.http import post
from tests.plugins.warehouse import start_warehouse
from warehouse_server.query.memory import DIRTY_PAGES_BYTES
from warehouse_server.security.confinement import NETWORK_ABI, Rules, landlock_abi, scrubbed_environment

REPO = Path(__file__).resolve().parents[3]
PSEUDO_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"), Path("/etc"))
PASSWORD = f"pw-{uuid.uuid4().hex}"
CANARY_TEXT = f"text-{uuid.uuid4().hex}"
INSERT = "INSERT INTO default.sink FORMAT TSV"

pytestmark = pytest.mark.skipif(landlock_abi() == 0, reason="this kernel has no Landlock")


@pytest.fixture
def shm_canary() -> Iterator[Path]:
    path = Path("/dev/shm") / f"tickwave-canary-{uuid.uuid4().hex}"
    path.write_text(CANARY_TEXT)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def _rules_from(applied: dict[str, object]) -> Rules:
    def paths(key: str) -> tuple[Path, ...]:
        value = applied[key]
        assert isinstance(value, list)
        return tuple(Path(item) for item in value)

    return Rules(
        read_trees=paths("read_trees"),
        read_files=paths("read_files"),
        read_write_files=paths("read_write_files"),
        listable_dirs=paths("listable_dirs"),
        write_trees=paths("write_trees"),
        bind_port=None,
    )


def test_confinement_when_the_production_rules_apply_then_only_granted_paths_open(
    tmp_path: Path, shm_canary: Path
) -> None:
    state = tmp_path / "state"
    data_dir = state / "data" / "warehouse"
    (data_dir / "chdb").mkdir(parents=True)
    (data_dir / "chdb" / "part.bin").write_text("data\n")
    secrets_file = state / "secrets" / "warehouse.json"
    secrets_file.parent.mkdir(mode=0o700, parents=True)
    secrets_file.write_text('{"password": "x"}')
    secrets_file.chmod(0o600)
    log = state / "logs" / "warehouse.log"
    log.parent.mkdir()
    log.write_text("log\n")
    tmp_canary = tmp_path / "canary.txt"
    tmp_canary.write_text("canary\n")
    secret = [
        "/proc/self/environ",
        "/proc/self/cmdline",
        "/proc/self/mem",
        "/proc/thread-self/environ",
        "/etc/passwd",
        "/dev/shm",
        str(shm_canary),
        str(tmp_canary),
        str(secrets_file),
        str(log),
        str(Path.home()),
        *(str(key) for key in Path("/etc/ssl/private").glob("*") if Path("/etc/ssl/private").is_dir()),
    ]
    needed = ["/dev/urandom", "/dev/null", "/proc/self/loginuid", str(data_dir / "chdb" / "part.bin")]
    roots = [
        "/:2",
        "/etc:8",
        "/dev:4",
        "/run:4",
        "/var:3",
        "/usr:2",
        "/sys:8",
        "/proc:1",
        "/proc/self:3",
        "/proc/thread-self:2",
        "/proc/sys:4",
        "/tmp:2",
        f"{Path.home()}:2",
        f"{REPO}:2",
        f"{tmp_path}:8",
        *(f"{path}:0" for path in (*secret, *needed)),
    ]

    probe = subprocess.run(
        [sys.executable, "-m", "tests.integration.warehouse.confinement_probe", str(data_dir), "18123", *roots],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found = json.loads(probe.stdout)
    rules = _rules_from(found["rules"])
    opened = {path: Path(real) for path, real in found["opened"]}

    assert found["abi"] >= 1 and found["tried"] > 5000
    outside = {path: real for path, real in opened.items() if rules.grant_for(real) is None}
    assert outside == {}
    wholesale = {
        path: rules.grant_for(real)
        for path, real in opened.items()
        if any(root == real or root in real.parents for root in PSEUDO_ROOTS) and rules.grant_for(real) == "tree"
    }
    assert wholesale == {}, "/proc, /sys, /dev and /etc are granted file by file only"
    assert [path for path in secret if found["named"][path]] == []
    assert [path for path in needed if not found["named"][path]] == []
    if found["abi"] >= NETWORK_ABI:
        assert not found["connected"] and not found["bound_elsewhere"]


@pytest.mark.parametrize("abi", [0, NETWORK_ABI - 1])
def test_confinement_when_the_kernel_is_older_then_the_start_says_what_is_not_confined(
    tmp_path: Path, abi: int
) -> None:
    data_dir = tmp_path / "data"
    named = ["/etc/passwd", "/dev/urandom"]

    probe = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.integration.warehouse.confinement_probe",
            str(data_dir),
            "18123",
            *(f"{path}:0" for path in named),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "PROBE_AS_LANDLOCK_ABI": str(abi)},
    )
    found = json.loads(probe.stdout)

    assert found["abi"] == abi and found["connected"], "below ABI 4 the kernel does not hold TCP"
    assert found["named"]["/dev/urandom"]
    if abi == 0:
        assert "runs without file confinement" in probe.stderr and found["named"]["/etc/passwd"]
    else:
        assert "the network is not" in probe.stderr and not found["named"]["/etc/passwd"]


def test_scrubbed_environment_when_secrets_are_exported_then_none_is_kept(tmp_path: Path) -> None:
    from tickwave.config import load_settings

    settings = load_settings(state_dir=tmp_path, clickhouse={"password": PASSWORD, "analyst_password": PASSWORD})
    exported = {
        "TICKWAVE_CLICKHOUSE_PASSWORD": PASSWORD,
        "AWS_SECRET_ACCESS_KEY": PASSWORD,
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "TICKWAVE_MT5_PASSWORD": PASSWORD,
        "MALLOC_ARENA_MAX": "2",
    }

    environment = scrubbed_environment(settings, exported)

    assert PASSWORD not in "".join(f"{name}={value}" for name, value in environment.items())
    assert environment["LANG"] == "C.UTF-8" and environment["TZ"] == "UTC" and environment["MALLOC_ARENA_MAX"] == "2"
    assert environment["TICKWAVE_STATE_DIR"] == str(settings.state_path)
    assert "HOME" not in environment and "AWS_SECRET_ACCESS_KEY" not in environment


def settled_rss(process: psutil.Process) -> int:
    """Return the resident size once it stops falling (an earlier test's memory may still be returning)."""
    previous = int(process.memory_info().rss)
    for _ in range(20):
        time.sleep(0.5)
        current = int(process.memory_info().rss)
        if current > previous - (16 << 20):
            return current
        previous = current
    return previous


@pytest.fixture(scope="module")
def exported_password_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """A warehouse started by the supervisor while its password is exported, as docs/operations.md offers."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("TICKWAVE_CLICKHOUSE_PASSWORD", PASSWORD)
    state_dir = tmp_path_factory.mktemp("exported")
    supervisor, service, endpoint = start_warehouse(state_dir, password=PASSWORD, max_memory_mb=1024, max_request_mb=64)
    try:
        yield endpoint
    finally:
        supervisor.stop(service)
        monkeypatch.undo()


def test_warehouse_when_the_password_is_exported_then_its_process_holds_none_and_refuses_host_files(
    exported_password_warehouse: Endpoint, shm_canary: Path
) -> None:
    endpoint = exported_password_warehouse
    credentials = Credentials("tickwave", SecretStr(PASSWORD), "analyst", SecretStr(""))
    environ = Path(f"/proc/{endpoint.pid}/environ").read_bytes()
    assert PASSWORD.encode() not in environ and b"TICKWAVE_CLICKHOUSE_PASSWORD" not in environ

    keys = [key for key in Path("/etc/ssl/private").glob("*")] if os.access("/etc/ssl/private", os.R_OK) else []
    for path in ["/proc/self/environ", "/proc/self/cmdline", str(shm_canary), *map(str, keys)]:
        reply = post(endpoint.address, credentials, f"SELECT file('{path}')".encode())

        assert reply.status != 200, path
        assert b"Permission denied" in reply.body, reply.body
        assert PASSWORD.encode() not in reply.body and CANARY_TEXT.encode() not in reply.body
    assert post(endpoint.address, credentials, b"SELECT 1").body == b"1\n"  # the password arrived by descriptor


def test_warehouse_when_a_refused_bomb_was_decoded_then_its_memory_returns(
    exported_password_warehouse: Endpoint,
) -> None:
    # The decoded body (300 MB) passes the 4 x 64 MB limit: refused, after Python's heap grew
    # by hundreds of MB that glibc keeps unless trimmed.
    endpoint = exported_password_warehouse
    credentials = Credentials("tickwave", SecretStr(PASSWORD), "analyst", SecretStr(""))
    compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = (b"y" * 1023 + b"\n") * (16 << 10)
    bomb = b"".join([*(compressor.compress(block) for _ in range((300 << 20) // len(block))), compressor.flush()])
    post(endpoint.address, credentials, b"CREATE TABLE IF NOT EXISTS default.sink (s String) ENGINE = Null")
    process = psutil.Process(endpoint.pid)
    idle = settled_rss(process)
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            samples.append(process.memory_info().rss)

    watcher = threading.Thread(target=sample)
    watcher.start()
    try:
        reply = post(endpoint.address, credentials, bomb, headers={"Content-Encoding": "gzip"}, query=INSERT)
    finally:
        done.set()
        watcher.join()

    assert reply.status == 413, reply.body
    peak = max(samples)
    deadline = time.monotonic() + 10
    while process.memory_info().rss > idle + (64 << 20) and time.monotonic() < deadline:
        time.sleep(0.25)
    settled = process.memory_info().rss
    assert peak > idle + (160 << 20), "the request must have grown the server for this test to mean anything"
    assert settled <= idle + (64 << 20), f"idle {idle >> 20} MiB, peak {peak >> 20} MiB, settled {settled >> 20} MiB"


def test_warehouse_when_started_by_the_supervisor_then_both_allocators_are_told_to_give_memory_back(
    exported_password_warehouse: Endpoint,
) -> None:
    endpoint = exported_password_warehouse
    credentials = Credentials("tickwave", SecretStr(PASSWORD), "analyst", SecretStr(""))
    environ = Path(f"/proc/{endpoint.pid}/environ").read_bytes().split(b"\0")
    sql = b"SELECT value FROM system.server_settings WHERE name = 'memory_worker_purge_dirty_pages_threshold_ratio'"

    reply = post(endpoint.address, credentials, sql)

    assert b"MALLOC_ARENA_MAX=2" in environ  # the supervisor's glibc setting survives the scrubbed re-execution
    assert float(reply.body) * (1024 << 20) == DIRTY_PAGES_BYTES  # jemalloc's dirty pages purged past 16 MiB


def test_warehouse_when_a_query_passes_the_memory_cap_then_it_fails_and_the_server_stays(
    exported_password_warehouse: Endpoint,
) -> None:
    endpoint = exported_password_warehouse
    credentials = Credentials("tickwave", SecretStr(PASSWORD), "analyst", SecretStr(""))
    sql = "SELECT length(groupArray(repeat('x', 1000))) FROM numbers(3000000) FORMAT Null"  # 3 GB in one array

    reply = post(endpoint.address, credentials, sql.encode())

    assert reply.status != 200 and reply.code == "241", reply.body  # MEMORY_LIMIT_EXCEEDED
    assert post(endpoint.address, credentials, b"SELECT 1").body == b"1\n"


def test_warehouse_when_merges_leave_hundreds_of_outdated_parts_then_their_removal_starts_no_thread_pool(
    exported_password_warehouse: Endpoint,
) -> None:
    # 300 one-row parts merge into one at once (merges held back until then); the 300 left outdated go once
    # their lifetime (1 s) passes. The engine's default removes more than 100 of them on a pool of up to 128
    # threads that then stay.
    endpoint = exported_password_warehouse
    credentials = Credentials("tickwave", SecretStr(PASSWORD), "analyst", SecretStr(""))
    name = f"parts_{uuid.uuid4().hex[:8]}"
    create = (
        f"CREATE TABLE default.{name} (n UInt64) ENGINE = MergeTree ORDER BY n "
        "SETTINGS old_parts_lifetime = 1, cleanup_delay_period = 1, max_cleanup_delay_period = 1"
    )
    assert post(endpoint.address, credentials, create.encode()).status == 200
    process = psutil.Process(endpoint.pid)
    threads_before = process.num_threads()
    one_part_a_row = "max_block_size = 1, min_insert_block_size_rows = 0, min_insert_block_size_bytes = 0"
    insert = f"INSERT INTO default.{name} SELECT number FROM numbers(300) SETTINGS {one_part_a_row}".encode()
    assert post(endpoint.address, credentials, f"SYSTEM STOP MERGES default.{name}".encode()).status == 200
    assert post(endpoint.address, credentials, insert).status == 200
    for step in (f"SYSTEM START MERGES default.{name}", f"OPTIMIZE TABLE default.{name} FINAL"):
        assert post(endpoint.address, credentials, step.encode()).status == 200
    parts = (
        f"SELECT countIf(active), countIf(NOT active), sumIf(rows, active) FROM system.parts "
        f"WHERE database = 'default' AND table = '{name}'"
    ).encode()
    deadline, most_threads, most_outdated = time.monotonic() + 90, threads_before, 0
    active, outdated, rows = 300, 0, 0
    while time.monotonic() < deadline:
        active, outdated, rows = map(int, post(endpoint.address, credentials, parts).body.split())
        most_threads, most_outdated = max(most_threads, process.num_threads()), max(most_outdated, outdated)
        if active <= 10 and outdated == 0:
            break
        time.sleep(0.2)

    assert (rows, outdated) == (300, 0) and active <= 10, (active, outdated, rows)  # merged, the old parts removed
    assert most_outdated > 100, most_outdated  # more than the engine's default removes one by one
    assert most_threads - threads_before < 24, (threads_before, most_threads)
