"""Connection-level bounds and the login lock-out, against a real warehouse of this module's own.

What a local process can do without a password: hold connections open without sending
a request, send a head a byte at a time, send a huge URL or header block; and, knowing
only a user's name, guess its password from as many loopback addresses as it likes.
What the analyst can do with its password: hold connections refused a slot while it
trickles their bodies, and never read its results. The module's warehouse has a small
connection budget, receive and send timeouts so each effect shows in seconds; the
lock-out tests run last (they lock the analyst out for the window).
"""

from __future__ import annotations

import dataclasses
import http.client
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials, resolve_credentials
from tests.integration.warehouse.bombs import footprint
from tests.integration.warehouse.http import Response, post
from tests.plugins.warehouse import start_warehouse
from tests.sockets import is_closed_by_server, is_closed_now, open_idle

MAX_CONNECTIONS = 64
RECEIVE_TIMEOUT_S = 1.5
SEND_TIMEOUT_S = 2.0
MAX_FAILED_LOGINS = 3
LOGIN_DELAY_S = 0.5
IDLE_CONNECTIONS = 520  # past the 512 connections after which the server answered every request 503


@dataclasses.dataclass(frozen=True)
class Warehouse:
    endpoint: Endpoint
    credentials: Credentials

    @property
    def host_port(self) -> tuple[str, int]:
        host, port = self.endpoint.address.rsplit(":", 1)
        return host, int(port)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    state_dir = tmp_path_factory.mktemp("connections")
    supervisor, service, endpoint = start_warehouse(
        state_dir,
        max_connections=MAX_CONNECTIONS,
        max_connections_per_client=MAX_CONNECTIONS // 2,
        http_receive_timeout_s=RECEIVE_TIMEOUT_S,
        http_send_timeout_s=SEND_TIMEOUT_S,
        max_failed_logins=MAX_FAILED_LOGINS,
        failed_login_window_s=30,
        failed_login_delay_s=LOGIN_DELAY_S,
    )
    try:
        yield Warehouse(endpoint, resolve_credentials(service.settings))
    finally:
        supervisor.stop(service)


def send_until_reset(sock: socket.socket, data: bytes) -> int:
    """Send ``data`` until it is all sent or the server closes; return how many bytes were sent."""
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(data[sent : sent + (1 << 20)])
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def raw_request(warehouse: Warehouse, head: bytes) -> tuple[bytes, float, int]:
    """Send ``head`` on a fresh connection while reading; return the answer's start, its wait and the bytes sent."""
    started = time.perf_counter()
    sent = [0]
    with socket.create_connection(warehouse.host_port, timeout=30) as sock:
        sender = threading.Thread(target=lambda: sent.__setitem__(0, send_until_reset(sock, head)))
        sender.start()
        answer = sock.recv(4096)
        elapsed_s = time.perf_counter() - started
        sender.join()
    return answer, elapsed_s, sent[0]


def test_connections_when_idle_ones_pass_the_budget_then_the_service_users_requests_get_in(
    warehouse: Warehouse,
) -> None:
    idle = open_idle(warehouse.host_port[1], IDLE_CONNECTIONS)
    try:
        replies = [post(warehouse.endpoint.address, warehouse.credentials, b"SELECT 1") for _ in range(20)]
        closed = sum(is_closed_now(sock) for sock in idle)
    finally:
        for sock in idle:
            sock.close()

    assert [reply.status for reply in replies] == [200] * 20  # not one 503
    assert closed >= IDLE_CONNECTIONS - MAX_CONNECTIONS  # the spare ones made room


def test_connections_when_one_never_sends_a_request_then_closed_after_the_receive_timeout(
    warehouse: Warehouse,
) -> None:
    (idle,) = open_idle(warehouse.host_port[1], 1)
    with idle:
        assert is_closed_by_server(idle, RECEIVE_TIMEOUT_S + 2)


def test_connections_when_a_head_trickles_in_then_closed_after_the_receive_timeout(warehouse: Warehouse) -> None:
    started = time.monotonic()
    with socket.create_connection(warehouse.host_port) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        closed = False
        while not closed and time.monotonic() - started < RECEIVE_TIMEOUT_S + 3:
            try:
                sock.sendall(b"X")  # a byte of a header name every 0.2 s
            except (BrokenPipeError, ConnectionResetError):
                closed = True
            closed = closed or is_closed_by_server(sock, 0.2)

    assert closed
    assert time.monotonic() - started < RECEIVE_TIMEOUT_S + 1.5


def test_connections_when_a_body_pauses_past_the_receive_timeout_then_closed(warehouse: Warehouse) -> None:
    user, password = warehouse.credentials.user, warehouse.credentials.password.get_secret_value()
    with socket.create_connection(warehouse.host_port) as sock:
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\nX-ClickHouse-User: {user}\r\nX-ClickHouse-Key: {password}\r\n"
            f"Content-Length: 100\r\n\r\nSELECT".encode()
        )
        assert is_closed_by_server(sock, RECEIVE_TIMEOUT_S + 2)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET /?query=" + b"x" * (8 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414"),
        (b"GET / HTTP/1.1\r\nX-Large: " + b"v" * (8 << 20) + b"\r\n\r\n", b"431"),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-F%d: 1\r\n" % index for index in range(20_000)) + b"\r\n", b"431"),
        (b"GET / HTTP/1.1\r\n" + b"X-" + b"n" * 4096 + b": 1\r\n\r\n", b"431"),
    ],
    ids=["8 MiB URL", "8 MiB header value", "20,000 headers", "4 KiB header name"],
)
def test_requests_when_the_head_passes_a_bound_then_answered_4xx_at_once_and_memory_stays(
    warehouse: Warehouse, head: bytes, status: bytes
) -> None:
    (answer, elapsed_s, _), used = footprint(warehouse.endpoint.pid, lambda: raw_request(warehouse, head))

    assert answer.startswith(b"HTTP/1.1 " + status), answer[:200]
    assert elapsed_s < 2.0
    assert used.peak_mib < 16, used


def test_requests_when_the_head_passes_a_bound_then_the_rest_is_never_read(warehouse: Warehouse) -> None:
    head = b"GET /?query=" + b"x" * (64 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n"

    answer, _, sent = raw_request(warehouse, head)

    assert answer.startswith(b"HTTP/1.1 414"), answer[:200]
    assert sent < 32 << 20  # the head's bound, and what the kernel's buffers took, then a reset


def test_requests_when_a_head_is_within_the_bounds_then_served(warehouse: Warehouse) -> None:
    headers = {f"X-Extra-{index}": "v" * 100 for index in range(200)}

    reply = post(warehouse.endpoint.address, warehouse.credentials, b"SELECT 1", headers=headers, param_x="y" * 60_000)

    assert reply.status == 200, reply.body


def analyst_upload(warehouse: Warehouse, sql: bytes, declared_bytes: int) -> socket.socket:
    """Open a connection from 127.0.0.1 that sends an analyst's head and the first bytes of a longer body."""
    credentials = warehouse.credentials
    sock = socket.create_connection(warehouse.host_port, timeout=5)
    sock.sendall(
        f"POST / HTTP/1.1\r\nHost: x\r\nX-ClickHouse-User: {credentials.analyst_user}\r\n"
        f"X-ClickHouse-Key: {credentials.analyst_password.get_secret_value()}\r\n"
        f"Content-Length: {declared_bytes}\r\n\r\n".encode()
        + sql
    )
    return sock


def read_until_closed(sock: socket.socket, within_s: float) -> bytes:
    """Read what the server sends until it closes ``sock``; b"" unless it closed within ``within_s``."""
    sock.settimeout(within_s)
    received = b""
    try:
        while chunk := sock.recv(4096):
            received += chunk
    except TimeoutError:
        return b""
    return received


class Trickler:
    """Analyst uploads from 127.0.0.1 sending a byte of their bodies every 0.3 s; reopened as they are closed."""

    def __init__(self, warehouse: Warehouse, count: int) -> None:
        self.warehouse = warehouse
        self.sockets: list[socket.socket | None] = [self._open() for _ in range(count)]
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _open(self) -> socket.socket | None:
        try:
            return analyst_upload(self.warehouse, b"SELECT 1 ", 1 << 20)
        except OSError:  # refused at once: tried again at the next round
            return None

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for index, sock in enumerate(self.sockets):
                try:
                    if sock is None:
                        raise ConnectionResetError
                    sock.send(b" ")
                except OSError:
                    if sock is not None:
                        sock.close()
                    self.sockets[index] = self._open()
                    self.reopened += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.sockets:
            if sock is not None:
                sock.close()


def service_user_gets_in(warehouse: Warehouse) -> bool:
    """Whether a new connection from 127.0.0.1 as the service user is answered SELECT 1."""
    try:
        return login_from(warehouse, "127.0.0.1", analyst=False).status == 200
    except OSError:  # reset at accept
        return False


def health_answers(warehouse: Warehouse) -> bool:
    """Whether a new connection gets ``/ping`` answered, as ``tickwave status`` asks."""
    try:
        connection = http.client.HTTPConnection(*warehouse.host_port, timeout=5)
        try:
            connection.request("GET", "/ping")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except OSError:
        return False


def test_connections_when_the_analyst_trickles_uploads_refused_a_slot_then_the_service_user_still_gets_in(
    warehouse: Warehouse,
) -> None:
    holders = [analyst_upload(warehouse, b"SELECT 1 ", 1 << 20) for _ in range(4)]  # the analyst's 4 slots
    time.sleep(0.3)
    with analyst_upload(warehouse, b"SELECT 1 ", 1 << 20) as refused_upload:
        answer = read_until_closed(refused_upload, within_s=RECEIVE_TIMEOUT_S / 2)
    trickler = Trickler(warehouse, 260)
    try:
        time.sleep(1.0)
        logins = [service_user_gets_in(warehouse) for _ in range(3)]
        health = health_answers(warehouse)
        refused = login_from(warehouse, "127.0.0.2", analyst=True)
    finally:
        trickler.close()
        for sock in holders:
            sock.close()

    assert b"x-clickhouse-exception-code: 202" in answer.lower() and answer.endswith(b"\n"), answer  # then closed
    assert logins == [True, True, True]
    assert health
    assert refused.code == "202", refused.body  # the analyst's slots were held throughout
    assert trickler.reopened > 0  # the refused uploads were closed, not drained


def test_connections_when_the_analyst_never_reads_its_results_then_its_slots_come_back_after_the_send_timeout(
    warehouse: Warehouse,
) -> None:
    # ~30 MB in blocks of ~0.5 MB, cheap to produce: far past the socket buffers, stalled within a second.
    sql = b"SELECT number FROM numbers(4000000) FORMAT TSV"
    readers = []
    for _ in range(4):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(warehouse.host_port)
        credentials = warehouse.credentials
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\nX-ClickHouse-User: {credentials.analyst_user}\r\n"
            f"X-ClickHouse-Key: {credentials.analyst_password.get_secret_value()}\r\n"
            f"Content-Length: {len(sql)}\r\n\r\n".encode()
            + sql
        )
        readers.append(sock)  # never read
    try:
        time.sleep(0.5)
        held = post(warehouse.endpoint.address, warehouse.credentials, b"SELECT 1", analyst=True)
        started = time.monotonic()
        later = held
        while later.status != 200 and time.monotonic() - started < SEND_TIMEOUT_S + 10:
            time.sleep(0.25)
            later = post(warehouse.endpoint.address, warehouse.credentials, b"SELECT 1", analyst=True)
        waited_s = time.monotonic() - started
    finally:
        for sock in readers:
            sock.close()

    assert held.code == "202", held.body  # the four unread results hold every slot
    assert later.status == 200, later.body
    assert waited_s < SEND_TIMEOUT_S + 6


def login_from(warehouse: Warehouse, source: str, *, analyst: bool, password: str | None = None) -> Response:
    credentials = warehouse.credentials
    user = credentials.analyst_user if analyst else credentials.user
    secret = (credentials.analyst_password if analyst else credentials.password).get_secret_value()
    connection = http.client.HTTPConnection(*warehouse.host_port, timeout=10, source_address=(source, 0))
    try:
        connection.request(
            "POST", "/", b"SELECT 1", {"X-ClickHouse-User": user, "X-ClickHouse-Key": password or secret}
        )
        answer = connection.getresponse()
        return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        connection.close()


def test_logins_when_guesses_come_from_many_loopback_addresses_then_the_user_is_locked_out(
    warehouse: Warehouse,
) -> None:
    failures = [
        login_from(warehouse, f"127.0.0.{index + 2}", analyst=True, password="guess")
        for index in range(MAX_FAILED_LOGINS)
    ]

    right_from_elsewhere = login_from(warehouse, "127.0.0.99", analyst=True)

    assert all(b"password is incorrect" in reply.body for reply in failures)
    assert right_from_elsewhere.code == "516", right_from_elsewhere.body
    assert b"too many failed login attempts" in right_from_elsewhere.body


def timed_login(warehouse: Warehouse, source: str, password: str | None = None) -> tuple[Response, float]:
    started = time.perf_counter()
    reply = login_from(warehouse, source, analyst=False, password=password)
    return reply, time.perf_counter() - started


def test_logins_when_the_service_user_is_past_the_limit_then_guesses_wait_and_its_right_login_does_not(
    warehouse: Warehouse,
) -> None:
    for index in range(MAX_FAILED_LOGINS):
        login_from(warehouse, f"127.0.3.{index + 2}", analyst=False, password="guess")

    guess, guess_s = timed_login(warehouse, "127.0.3.100", "guess")
    right, right_s = timed_login(warehouse, "127.0.3.101")
    later_guess, later_guess_s = timed_login(warehouse, "127.0.3.102", "guess")  # the good login forgot nothing

    assert guess.code == "516" and guess_s >= LOGIN_DELAY_S, (guess.body, guess_s)
    assert later_guess.code == "516" and later_guess_s >= LOGIN_DELAY_S, (later_guess.body, later_guess_s)
    assert right.status == 200 and right_s < LOGIN_DELAY_S, (right.body, right_s)


def test_logins_when_a_local_process_guesses_the_service_users_password_then_it_still_gets_in(
    warehouse: Warehouse,
) -> None:
    failures = [
        login_from(warehouse, f"127.0.1.{index + 2}", analyst=False, password="guess")
        for index in range(MAX_FAILED_LOGINS * 4)
    ]

    right = login_from(warehouse, "127.0.1.200", analyst=False)

    assert all(b"password is incorrect" in reply.body for reply in failures)
    assert right.status == 200, right.body
