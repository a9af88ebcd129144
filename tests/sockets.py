"""Socket helpers for the tests of servers' connection bounds."""

from __future__ import annotations

import selectors
import socket
import threading


def open_idle(port: int, count: int, address: str | None = None) -> list[socket.socket]:
    """Open ``count`` connections to ``port`` that never send a byte (from spread loopback addresses by default).

    A server that counts connections per client address sees each from its own address
    (127.0.0.2 onwards), as from as many local processes; ``address`` puts them all on one.
    """
    sockets = []
    for index in range(count):
        sock = socket.socket()
        sock.bind((address or f"127.0.{index // 250}.{index % 250 + 2}", 0))
        sock.connect(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


def is_closed_now(sock: socket.socket) -> bool:
    """Return whether the server has already closed ``sock``, without waiting."""
    return is_closed_by_server(sock, 0)


def is_closed_by_server(sock: socket.socket, within_s: float) -> bool:
    """Return whether the server closes ``sock`` within ``within_s`` (it must have sent nothing)."""
    sock.settimeout(within_s)
    try:
        return sock.recv(1) == b""
    except (TimeoutError, BlockingIOError):  # a timeout of 0 makes the socket non-blocking
        return False
    except ConnectionResetError:
        return True


class SilentHolders:
    """``count`` connections that never send a byte, each reopened as soon as the server cuts it.

    One thread holds them all (non-blocking sockets on a selector), so even hundreds of them
    take little of the interpreter from a server running in the same process.
    """

    def __init__(self, port: int, count: int) -> None:
        self.port = port
        self.count = count
        self.reopened = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)
        self._thread.start()

    def _hold(self) -> None:
        with selectors.DefaultSelector() as selector:

            def open_one() -> None:
                sock = socket.socket()
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", self.port))
                selector.register(sock, selectors.EVENT_READ)

            for _ in range(self.count):
                open_one()
            while not self._stop.is_set():
                for key, _ in selector.select(0.1):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        is_closed = sock.recv(1) == b""
                    except BlockingIOError:
                        continue
                    except OSError:
                        is_closed = True
                    if is_closed:
                        selector.unregister(sock)
                        sock.close()
                        self.reopened += 1
                        open_one()
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
