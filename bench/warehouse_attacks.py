"""What a local process can throw at the embedded warehouse, each as a loop run in a process of its own.

Used by ``bench/warehouse.py`` to measure the writer's insert latency under each attack.
Every attack runs until ``done`` is set; those that need no password use none. Each
reopens what the server closes, so the pressure stays on for the whole measurement. An
attack aims at the warehouse's HTTP port, or at its metrics port (:data:`ATTACKS` says
which).
"""

from __future__ import annotations

import socket
import time
import zlib
from collections.abc import Callable
from typing import Any, NamedTuple

import zstandard

from adapters.warehouse.credentials import Credentials
from tests.integration.warehouse.http import post

MIB = 1 << 20


def _address(address: str) -> tuple[str, int]:
    host, port = address.rsplit(":", 1)
    return host, int(port)


def _send_head(address: str, head: bytes) -> None:
    try:
        with socket.create_connection(_address(address), timeout=30) as sock:
            sock.sendall(head)
            sock.recv(4096)
    except OSError:
        pass  # the server closed it: the attacker starts again


def run_when_ready(
    loop: Callable[[str, Credentials, Any], None], ready: Any, address: str, credentials: Credentials, done: Any
) -> None:
    """Set ``ready`` (the interpreter has started and imported), then run ``loop`` until ``done`` is set."""
    ready.set()
    loop(address, credentials, done)


def idle_connections(address: str, _credentials: Credentials, done: Any, count: int = 515) -> None:
    """Hold ``count`` connections from spread loopback addresses that never send a request."""
    open_sockets: list[socket.socket] = []
    index = 0
    while not done.is_set():
        alive = []
        for sock in open_sockets:
            sock.setblocking(False)
            try:
                is_closed = sock.recv(1) == b""
            except BlockingIOError:
                is_closed = False
            except OSError:
                is_closed = True
            if is_closed:
                sock.close()
            else:
                alive.append(sock)
        open_sockets = alive
        while len(open_sockets) < count:
            index += 1
            sock = socket.socket()
            try:
                sock.bind((f"127.0.{index // 250 % 250}.{index % 250 + 2}", 0))
                sock.connect(_address(address))
            except OSError:
                sock.close()
                break
            open_sockets.append(sock)
        done.wait(0.2)
    for sock in open_sockets:
        sock.close()


def huge_url(address: str, _credentials: Credentials, done: Any) -> None:
    """Send a request whose URL is 80 MiB, again and again."""
    head = b"GET /?query=" + b"x" * (80 * MIB) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    while not done.is_set():
        _send_head(address, head)


def huge_header(address: str, _credentials: Credentials, done: Any) -> None:
    """Send a request with one 80 MiB header value, again and again."""
    head = b"GET / HTTP/1.1\r\nX-Large: " + b"v" * (80 * MIB) + b"\r\n\r\n"
    while not done.is_set():
        _send_head(address, head)


def many_headers(address: str, _credentials: Credentials, done: Any) -> None:
    """Send 30 MiB of small headers on one connection, again and again."""
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%07d: 1\r\n" % index for index in range(30 * MIB // 13)) + b"\r\n"
    while not done.is_set():
        _send_head(address, head)


def joined_system_tables(tables: int = 1500) -> bytes:
    """An analyst query of ~130 KB joining ``tables`` system tables, refused only by its last column (a host path)."""
    columns = ", ".join(f"t{index}.name" for index in range(tables) for _ in range(5))
    joined = ", ".join(f"system.tables AS t{index}" for index in range(tables))
    return f"SELECT {columns}, t0.data_paths FROM {joined}".encode()


def policy_bomb(address: str, credentials: Credentials, done: Any) -> None:
    """As the analyst, send a query joining 1,500 system tables, again and again."""
    body = joined_system_tables()
    while not done.is_set():
        post(address, credentials, body, analyst=True)


def empty_gzip_members(address: str, credentials: Credentials, done: Any) -> None:
    """As the analyst, send 1 MB of 50,000 empty gzip members, again and again."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    member = compressor.compress(b"") + compressor.flush()
    body = member * (1_000_000 // len(member))
    while not done.is_set():
        post(address, credentials, body, analyst=True, headers={"Content-Encoding": "gzip"})


def empty_zstd_frames(address: str, credentials: Credentials, done: Any) -> None:
    """As the analyst, send 80,000 empty zstd frames, again and again."""
    body = zstandard.ZstdCompressor().compress(b"") * 80_000
    while not done.is_set():
        post(address, credentials, body, analyst=True, headers={"Content-Encoding": "zstd"})


def password_guesses(address: str, credentials: Credentials, done: Any) -> None:
    """Guess the analyst's and the service user's passwords from 50 loopback addresses in turn."""
    import http.client

    host, port = _address(address)
    index = 0
    while not done.is_set():
        index += 1
        user = credentials.analyst_user if index % 2 else credentials.user
        connection = http.client.HTTPConnection(host, port, timeout=10, source_address=(f"127.0.2.{index % 50 + 2}", 0))
        try:
            connection.request(
                "POST", "/", b"SELECT 1", {"X-ClickHouse-User": user, "X-ClickHouse-Key": f"guess{index}"}
            )
            connection.getresponse().read()
        except OSError:
            pass
        finally:
            connection.close()


def _analyst_request(address: str, credentials: Credentials, body: bytes, declared_bytes: int) -> socket.socket:
    sock = socket.create_connection(_address(address), timeout=5)
    sock.sendall(
        f"POST / HTTP/1.1\r\nHost: x\r\nX-ClickHouse-User: {credentials.analyst_user}\r\n"
        f"X-ClickHouse-Key: {credentials.analyst_password.get_secret_value()}\r\n"
        f"Content-Length: {declared_bytes}\r\n\r\n".encode()
        + body
    )
    return sock


def _keep(open_sockets: list[socket.socket | None], reopen: Callable[[], socket.socket], send: bytes) -> None:
    """Send ``send`` on each socket (nothing: only look whether it was closed); reopen the closed ones."""
    for index, sock in enumerate(open_sockets):
        try:
            if sock is None:
                raise ConnectionResetError
            sock.setblocking(False)
            if send:
                sock.send(send)
            else:
                try:
                    if sock.recv(1, socket.MSG_PEEK) == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    pass
        except OSError:
            if sock is not None:
                sock.close()
            try:
                open_sockets[index] = reopen()
            except OSError:
                open_sockets[index] = None


def unread_results(address: str, credentials: Credentials, done: Any) -> None:
    """As the analyst, hold 4 queries with 30 MB results that are never read, reopened as they are cut."""
    sql = b"SELECT number FROM numbers(4000000) FORMAT TSV"

    def reopen() -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(5)
        sock.connect(_address(address))
        sock.sendall(
            f"POST / HTTP/1.1\r\nHost: x\r\nX-ClickHouse-User: {credentials.analyst_user}\r\n"
            f"X-ClickHouse-Key: {credentials.analyst_password.get_secret_value()}\r\n"
            f"Content-Length: {len(sql)}\r\n\r\n".encode()
            + sql
        )
        return sock

    held: list[socket.socket | None] = [None] * 4
    while not done.is_set():
        _keep(held, reopen, b"")
        done.wait(0.5)
    for sock in held:
        if sock is not None:
            sock.close()


def trickled_refused_uploads(address: str, credentials: Credentials, done: Any) -> None:
    """As the analyst from 127.0.0.1: 4 uploads holding its slots, 260 more refused a slot, all trickled."""

    def reopen() -> socket.socket:
        return _analyst_request(address, credentials, b"SELECT 1 ", MIB)

    holders: list[socket.socket | None] = [None] * 4
    trickled: list[socket.socket | None] = [None] * 260
    _keep(holders, reopen, b" ")
    time.sleep(0.3)
    while not done.is_set():
        _keep(holders, reopen, b" ")
        _keep(trickled, reopen, b" ")
        done.wait(0.3)
    for sock in holders + trickled:
        if sock is not None:
            sock.close()


def silent_metrics_connections(address: str, _credentials: Credentials, done: Any) -> None:
    """Hold 8 connections to the metrics port that send nothing, reopened as they are cut."""

    def reopen() -> socket.socket:
        return socket.create_connection(_address(address), timeout=5)

    held: list[socket.socket | None] = [None] * 8
    while not done.is_set():
        _keep(held, reopen, b"")
        done.wait(0.05)
    for sock in held:
        if sock is not None:
            sock.close()


class Attack(NamedTuple):
    """An attack's loop, how many processes run it, and the port it aims at (``http`` or ``metrics``)."""

    loop: Callable[[str, Credentials, Any], None]
    processes: int
    target: str = "http"


ATTACKS: dict[str, Attack] = {
    "515 idle connections (no password)": Attack(idle_connections, 1),
    "an 80 MiB URL, repeated (no password)": Attack(huge_url, 1),
    "an 80 MiB header value, repeated (no password)": Attack(huge_header, 1),
    "30 MiB of small headers, repeated (no password)": Attack(many_headers, 1),
    "4 analysts: 1,500 joined system tables (119 KB)": Attack(policy_bomb, 4),
    "4 analysts: 1 MB of 50,000 empty gzip members": Attack(empty_gzip_members, 4),
    "4 analysts: 80,000 empty zstd frames": Attack(empty_zstd_frames, 4),
    "analyst: 4 results of 30 MB never read (held slots)": Attack(unread_results, 1),
    "analyst: 260 uploads refused a slot, trickled (4 holding the slots)": Attack(trickled_refused_uploads, 1),
    "8 silent connections to the metrics port (no password)": Attack(silent_metrics_connections, 1, "metrics"),
    "password guesses from 50 loopback addresses": Attack(password_guesses, 1),
}
