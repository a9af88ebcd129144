"""Reading a request: the per-user body bounds, counted bodies and echoed query ids."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from warehouse_server.http.asgi import Limits
from warehouse_server.http.request import checked_query_id, read_body
from warehouse_server.protocol import BAD_ARGUMENTS, QUERY_IS_TOO_LARGE, QueryError
from warehouse_server.security.auth import READ_ONLY, READ_WRITE, User

LIMITS = Limits(
    max_body_bytes=100 << 20,
    max_decoded_bytes=400 << 20,
    response_buffer_bytes=1 << 20,
    keep_alive_timeout_s=10,
    read_only_max_body_bytes=1 << 20,
    read_only_max_decoded_bytes=8 << 20,
)


@pytest.mark.parametrize(
    ("readonly", "body_bytes", "decoded_bytes"),
    [(READ_ONLY, 1 << 20, 8 << 20), (READ_WRITE, 100 << 20, 400 << 20)],
    ids=["analyst", "service"],
)
def test_limits_when_asked_for_a_user_then_a_read_only_one_gets_the_lower_bounds(
    readonly: int, body_bytes: int, decoded_bytes: int
) -> None:
    user = User("someone", "x", readonly)

    assert (LIMITS.body_bytes_for(user), LIMITS.decoded_bytes_for(user)) == (body_bytes, decoded_bytes)


def _receiving(*chunks: bytes) -> Any:
    messages: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    return receive


@pytest.mark.parametrize(
    ("headers", "chunks"),
    [({"content-length": "11"}, [b"x" * 11]), ({}, [b"x" * 6, b"x" * 5])],
    ids=["declared", "counted"],
)
def test_read_body_when_over_the_limit_then_refused_as_too_large(headers: dict[str, str], chunks: list[bytes]) -> None:
    with pytest.raises(QueryError) as raised:
        asyncio.run(read_body(_receiving(*chunks), headers, limit=10))

    assert raised.value.code == QUERY_IS_TOO_LARGE


def test_read_body_when_within_the_limit_then_the_chunks_are_joined() -> None:
    body = asyncio.run(read_body(_receiving(b"SELECT ", b"1"), {}, limit=10))

    assert body == b"SELECT 1"


@pytest.mark.parametrize("query_id", ["a\r\nX-Injected: 1", " leading", "x" * 129, "caf\u00e9"])
def test_checked_query_id_when_not_a_safe_header_value_then_refused(query_id: str) -> None:
    with pytest.raises(QueryError) as raised:
        checked_query_id({"query_id": query_id}, {})

    assert raised.value.code == BAD_ARGUMENTS
