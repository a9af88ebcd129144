"""What the embedded services expose to the network: only loopback sockets.

Every port a Tickwave process listens on (its own and its children's, TCP and UDP) is
read from the kernel (psutil) and must be bound to a loopback address. Checked here on the
broker and the warehouse the test plugins start, and after a full `tickwave up` with
Dagster in ``test_supervision.py``.
"""

from __future__ import annotations

import ipaddress
import socket

import psutil

from adapters.endpoints import Endpoint


def listening(pid: int) -> list[tuple[str, str, int]]:
    """Return (program, address, port) of every socket ``pid`` and its descendants listen on."""
    root = psutil.Process(pid)
    found = []
    for process in [root, *root.children(recursive=True)]:
        try:
            program = " ".join(process.cmdline()[:3])[:80]
            for connection in process.net_connections(kind="inet"):
                is_udp = connection.type == socket.SOCK_DGRAM and not connection.raddr
                if connection.status == psutil.CONN_LISTEN or is_udp:
                    found.append((program, connection.laddr.ip, connection.laddr.port))
        except psutil.NoSuchProcess:  # ended meanwhile (a short-lived child)
            continue
    return found


def is_loopback(address: str) -> bool:
    """Whether ``address`` is a loopback address (a JVM shows 127.0.0.1 as ``::ffff:127.0.0.1``)."""
    parsed = ipaddress.ip_address(address.split("%")[0])
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback


def beyond_loopback(sockets: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Return the sockets not bound to a loopback address (0.0.0.0 and :: included)."""
    return [entry for entry in sockets if not is_loopback(entry[1])]


def test_embedded_services_when_started_then_they_listen_on_loopback_only(
    kafka_endpoint: Endpoint, warehouse_endpoint: Endpoint
) -> None:
    # Act
    kafka, warehouse = listening(kafka_endpoint.pid), listening(warehouse_endpoint.pid)

    # Assert: each has its ports (the broker's client and controller listeners, the warehouse's HTTP), all loopback
    assert {port for _, _, port in kafka} >= set(kafka_endpoint.ports.values()), (kafka, kafka_endpoint.ports)
    assert {port for _, _, port in warehouse} >= set(warehouse_endpoint.ports.values()), warehouse
    assert beyond_loopback(kafka + warehouse) == []
