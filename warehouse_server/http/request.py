"""Reading one HTTP request of the ClickHouse interface: its body, its query id, its plan.

The body is read up to the user's bound, counting what arrives (a declared
``Content-Length`` over the bound is refused before anything is read); a refused body
is read and dropped up to :data:`DISCARD_BYTES`, so a client still sending it reads the
refusal instead of a connection reset. Decoding and planning (:func:`prepare`) are pure
Python work the caller runs in a worker thread.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from warehouse_server.http.codecs import decode_body, decode_frames, form_fields
from warehouse_server.protocol import BAD_ARGUMENTS, QUERY_IS_TOO_LARGE, QueryError
from warehouse_server.query.planning import Plan, full_query, plan
from warehouse_server.security.auth import READ_ONLY, User

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DISCARD_BYTES = 64 << 20  # how much of a refused body is read and dropped before answering
MAX_QUERY_ID_CHARS = 128
_QUERY_ID = re.compile(rf"[!-~](?:[ -~]{{0,{MAX_QUERY_ID_CHARS - 2}}}[!-~])?")


class ClientGone(Exception):
    """The client disconnected before the request was read."""


def is_true(value: str | None) -> bool:
    """Return whether a ClickHouse boolean parameter is set (absent, empty, 0 and false are not)."""
    return value is not None and value.strip().lower() not in ("", "0", "false")


def client_address(scope: Scope) -> str:
    """Return the client's address of an ASGI scope ("-" when the server does not know it)."""
    client = scope.get("client")
    return str(client[0]) if client else "-"


def checked_query_id(params: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """Return the query id a request names ("" for none), refusing one that is not a safe header value.

    The id is echoed in ``X-ClickHouse-Query-Id``; a control character in it made the HTTP
    server fail while writing the response headers, after the query had started.

    Raises:
        QueryError: BAD_ARGUMENTS for an id that is not 1 to 128 printable ASCII characters.
    """
    query_id = params.get("query_id") or headers.get("x-clickhouse-query-id") or ""
    if query_id and not _QUERY_ID.fullmatch(query_id):
        raise QueryError(
            BAD_ARGUMENTS,
            f"Invalid query_id: it must be 1 to {MAX_QUERY_ID_CHARS} printable ASCII characters, "
            f"without leading or trailing spaces",
        )
    return query_id


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """Read the whole request body, refusing one over ``limit`` bytes.

    Raises:
        ClientGone: if the client disconnected first.
        QueryError: QUERY_IS_TOO_LARGE for a body over ``limit`` (declared or counted).
    """
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        # A client waiting for 100-continue sends nothing more; any other is already sending.
        if headers.get("expect", "").lower() != "100-continue":
            await discard(receive, DISCARD_BYTES)
        raise QueryError(QUERY_IS_TOO_LARGE, f"Request body of {declared} bytes is larger than the limit of {limit}")
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            if message.get("more_body", False):
                await discard(receive, DISCARD_BYTES)
            raise QueryError(QUERY_IS_TOO_LARGE, f"Request body is larger than the limit of {limit} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def discard(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a refused body (up to ``budget`` bytes).

    A client still sending its body cannot read the error until the body is consumed;
    closing on it instead makes it see a connection reset rather than QUERY_IS_TOO_LARGE.
    """
    while budget > 0:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


def prepare(
    method: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
    user: User,
    decoded_limit: int,
) -> tuple[Plan, Mapping[str, str]]:
    """Decode ``body`` (up to ``decoded_limit`` bytes) and plan the request; return the plan and its parameters.

    Runs in a worker thread: it is Python work that holds the GIL. Form fields of a
    multipart body are parameters, so the parameters returned are the ones the plan used.
    """
    decoded = decode_body(body, headers.get("content-encoding", ""), decoded_limit)
    del body  # the compressed copy is not needed past here: a large body is not held twice
    if is_true(params.get("decompress")):
        # Only a user that may change HTTP settings may skip the checksums (a read-only user's plan refuses it).
        unverified = user.readonly != READ_ONLY and is_true(
            params.get("http_native_compression_disable_checksumming_on_decompress")
        )
        decoded = decode_frames(decoded, decoded_limit, verify=not unverified)
    content_type = headers.get("content-type", "")
    files: dict[str, bytes] = {}
    if content_type.lower().startswith("multipart/form-data"):
        # Form fields are parameters (the query among them), files are external data; the body is not SQL.
        fields, files = form_fields(decoded, content_type)
        params = {**params, **fields}
        text = params.get("query", "").encode()
    else:
        text = full_query(params.get("query", ""), decoded)
    return plan(method=method, params=params, headers=headers, text=text, user=user, files=files), params
