"""Socket helpers for the tests of servers' connection bounds."""

from __future__ import annotations

import socket


def is_closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Return whether the server closes ``sock`` within ``within_s`` (it must have sent nothing)."""
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
