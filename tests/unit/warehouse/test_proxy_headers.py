"""Which client address the service sees: the TCP peer, or a trusted proxy's X-Forwarded-For."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest
import uvicorn

from tickwave.config import ClickHouseSettings
from warehouse_server.server import proxy_options

FORGED = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-real-ip", b"203.0.113.7"), (b"forwarded", b"for=203.0.113.7")]


def client_seen(trusted_proxies: list[str], peer: str) -> str:
    """Return the client address uvicorn hands the application for a request from ``peer`` with forged headers."""
    seen: list[str] = []

    async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["client"][0])

    config = uvicorn.Config(app, **proxy_options(ClickHouseSettings(trusted_proxies=tuple(trusted_proxies))))
    config.load()
    scope = {"type": "http", "scheme": "http", "client": (peer, 40000), "headers": FORGED, "path": "/"}
    asyncio.run(config.loaded_app(scope, None, None))
    return seen[0]


@pytest.mark.parametrize(
    ("trusted_proxies", "peer", "client"),
    [
        ([], "127.0.0.1", "127.0.0.1"),  # the default: forwarded headers are ignored, even from loopback
        (["10.0.0.0/8"], "127.0.0.1", "127.0.0.1"),  # a peer not named is not trusted
        (["127.0.0.1"], "127.0.0.1", "203.0.113.7"),
        (["127.0.0.0/8"], "127.0.0.2", "203.0.113.7"),
    ],
)
def test_proxy_options_when_a_request_forges_forwarded_headers_then_only_a_trusted_proxy_is_believed(
    trusted_proxies: list[str], peer: str, client: str
) -> None:
    assert client_seen(trusted_proxies, peer) == client
