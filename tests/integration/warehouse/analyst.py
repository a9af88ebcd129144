"""What the read-only analyst's tests share: sending as the analyst, and what a refusal must look like.

A canary file of the host (and the warehouse's own secrets file) must never come back in
a refusal; :data:`CANARY_TEXT` is its content (the ``canary`` fixture of this folder's
conftest writes it).
"""

from __future__ import annotations

import uuid

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials
from tests.integration.warehouse.http import Response, post

CANARY_TEXT = f"canary-{uuid.uuid4().hex}"


def as_analyst(endpoint: Endpoint, credentials: Credentials, sql: str, **params: str) -> Response:
    return post(endpoint.address, credentials, sql.encode(), analyst=True, **params)


def assert_refused(reply: Response, *leaks: str, code: str | None = "164") -> None:
    body = reply.body.decode("utf-8", "replace")
    assert reply.status != 200, body
    assert reply.code is not None, body
    if code is not None:
        assert reply.code == code, body
    for leak in (CANARY_TEXT, *leaks):
        assert leak not in body
