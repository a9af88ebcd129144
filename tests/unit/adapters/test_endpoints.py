"""Ports for the embedded services: free, and out of the way of outgoing connections."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from adapters import endpoints
from adapters.endpoints import LOOPBACK, free_port


def test_free_port_when_asked_then_free_and_below_the_kernel_range_for_outgoing_connections() -> None:
    # A service restarted on its port must find it free: an outgoing connection's local port comes from the range.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}

    assert all(1024 <= port < low for port in ports), sorted(ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, port))


def test_free_port_when_asked_twice_then_never_the_same_port(monkeypatch: pytest.MonkeyPatch) -> None:
    # A platform's ports are picked together and bound later: the same port twice would start one service on
    # another's port. Offered the same candidate every time, the second pick is another port.
    monkeypatch.setattr(endpoints.random, "sample", lambda population, k: [population[-1]] * k)

    assert free_port() != free_port()
