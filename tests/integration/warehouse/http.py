"""A tiny raw-HTTP helper for tests that must send exactly chosen bytes and headers."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

import urllib3

from adapters.warehouse.credentials import Credentials

_POOL = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=60))


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str | None:
        return self.headers.get("x-clickhouse-exception-code")


def post(
    address: str,
    credentials: Credentials,
    body: bytes,
    *,
    analyst: bool = False,
    headers: dict[str, str] | None = None,
    **params: str,
) -> Response:
    user = credentials.analyst_user if analyst else credentials.user
    password = (credentials.analyst_password if analyst else credentials.password).get_secret_value()
    url = f"http://{address}/?{urllib.parse.urlencode(params)}"
    response = _POOL.request(
        "POST",
        url,
        body=body,
        headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": password, **(headers or {})},
        decode_content=True,
    )
    return Response(response.status, {name.lower(): value for name, value in response.headers.items()}, response.data)
