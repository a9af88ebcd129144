"""Idle TCP connections to the broker from any local account: what the flood test and benchmark throw at it.

``flood(address, 20_000)`` opens that many connections to ``address`` from child processes
(5,000 each, under a default file limit), from several loopback source addresses (a client
on loopback picks any of 127.0.0.0/8), and holds them without sending a byte until the
block ends; a connection the broker closes is opened again, so the pressure stays on.
Connections are opened at a pace the broker can accept (``OPENED_PER_S`` per process): a burst
would overflow the kernel's accept queue, and its extra connections, established on the client's
side only, would never reach the broker. Attempts the broker does not accept yet wait in the
kernel's queue, as an attacker's would.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import resource
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.synchronize import Event

PER_PROCESS = 5_000
OPENED_PER_S = 250  # per process: a pace the broker's acceptor keeps up with (a burst overflows the kernel's queue)
SOURCES = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")


@dataclass
class FloodCounts:
    """What the flood's processes reported when it ended."""

    attempts: int = 0  # connections opened, the reopened ones included
    peak_established: int = 0  # most connections established at one time, every process added up


def _connect(address: tuple[str, int], source: str) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        sock.bind((source, 0))
        sock.connect_ex(address)
    except OSError:
        sock.close()
        return None
    return sock


def _hold(address: tuple[str, int], count: int, source: str, done: Event, report: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    poller = select.epoll()
    sockets: dict[int, socket.socket] = {}
    attempts = peak = 0
    started = time.monotonic()
    while not done.is_set():
        allowed = int((time.monotonic() - started) * OPENED_PER_S) - attempts
        while len(sockets) < count and allowed > 0 and not done.is_set():
            allowed -= 1
            sock = _connect(address, source)
            if sock is None:
                break
            attempts += 1
            sockets[sock.fileno()] = sock
            poller.register(sock.fileno(), select.EPOLLOUT | select.EPOLLIN | select.EPOLLRDHUP)
        established = 0
        for fileno, events in poller.poll(0.1):
            sock = sockets[fileno]
            if events & (select.EPOLLIN | select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR):
                poller.unregister(fileno)
                sockets.pop(fileno).close()  # closed by the broker (or refused): opened again next round
            elif events & select.EPOLLOUT:
                poller.modify(fileno, select.EPOLLIN | select.EPOLLRDHUP)  # connected: now only its close matters
        for sock in sockets.values():
            with contextlib.suppress(OSError):
                sock.getpeername()
                established += 1
        peak = max(peak, established)
    for sock in sockets.values():
        sock.close()
    report.put((attempts, peak))


@contextlib.contextmanager
def flood(address: str, count: int = 20_000) -> Iterator[FloodCounts]:
    """Hold ``count`` idle connections to ``address`` (``host:port``) while the block runs."""
    host, port = address.rsplit(":", 1)
    target = (host, int(port))
    context = multiprocessing.get_context("spawn")
    done, report = context.Event(), context.Queue()
    shares = [min(PER_PROCESS, count - start) for start in range(0, count, PER_PROCESS)]
    workers = [
        context.Process(target=_hold, args=(target, share, SOURCES[index % len(SOURCES)], done, report), daemon=True)
        for index, share in enumerate(shares)
    ]
    for worker in workers:
        worker.start()
    counts = FloodCounts()
    try:
        yield counts
    finally:
        done.set()
        deadline = time.monotonic() + 30
        for _worker in workers:
            with contextlib.suppress(Exception):
                attempts, peak = report.get(timeout=max(0.1, deadline - time.monotonic()))
                counts.attempts += attempts
                counts.peak_established += peak
        for worker in workers:
            worker.join(5)
            if worker.is_alive():
                worker.kill()
