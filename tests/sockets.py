"""Socket helpers for the tests of servers' connection bounds."""

from __future__ import annotations

import socket
import threading


def is_closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Return whether the server closes ``sock`` within ``within_s`` (it must have sent nothing)."""
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


class SilentHolders:
    """``count`` connections that never send a byte, each reopened as soon as the server cuts it."""

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.reopened = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._hold, daemon=True) for _ in range(count)]
        for thread in self._threads:
            thread.start()

    def _hold(self) -> None:
        while not self._stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    while not self._stop.is_set() and not is_closed_by_server(sock, within_s=0.2):
                        pass
            except OSError:
                pass
            self.reopened += 1

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
