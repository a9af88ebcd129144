"""What a local process can throw at the embedded warehouse, each as a loop run in a process of its own.

Used by ``bench/warehouse.py`` to measure the writer's insert latency under each attack.
Every attack runs until ``done`` is set; those that need no password use none. Each
reopens what the server closes, so the pressure stays on for the whole measurement.
"""

from __future__ import annotations

import socket
import zlib
from collections.abc import Callable
from typing import Any

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


# name: (the loop, how many processes run it)
ATTACKS: dict[str, tuple[Callable[[str, Credentials, Any], None], int]] = {
    "515 idle connections (no password)": (idle_connections, 1),
    "an 80 MiB URL, repeated (no password)": (huge_url, 1),
    "an 80 MiB header value, repeated (no password)": (huge_header, 1),
    "30 MiB of small headers, repeated (no password)": (many_headers, 1),
    "4 analysts: 1,500 joined system tables (119 KB)": (policy_bomb, 4),
    "4 analysts: 1 MB of 50,000 empty gzip members": (empty_gzip_members, 4),
    "4 analysts: 80,000 empty zstd frames": (empty_zstd_frames, 4),
    "password guesses from 50 loopback addresses": (password_guesses, 1),
}
