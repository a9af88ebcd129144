"""Authentication and read-only rules of the HTTP service, as ClickHouse applies them.

Credentials come from ``X-ClickHouse-User``/``X-ClickHouse-Key`` headers, HTTP basic auth,
or the ``user``/``password`` parameters; mixing the header scheme with another one is
refused, as ClickHouse does. A request without credentials is user ``default``, who
exists only when ``allow_no_password`` is set (then it is the service user).

Read-only levels follow ClickHouse's ``readonly`` setting: the analyst is ``1`` (reads
only, cannot change any setting, so cannot lift it), a GET by the service user is ``2``
(reads and settings, except ``readonly`` itself).

The engine enforces ``readonly``, but chdb's ``readonly`` still lets ``INTO OUTFILE``
write host files, and the scalar ``file()`` read them: read-only requests also pass
:mod:`warehouse_server.security.policy`, which decides on the engine's own parse tree.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from adapters.warehouse.credentials import Credentials
from warehouse_server.protocol import AUTHENTICATION_FAILED, QueryError

READ_WRITE = 0
READ_ONLY = 1
READ_ONLY_SETTINGS_ALLOWED = 2
DEFAULT_USER = "default"


@dataclass(frozen=True)
class User:
    """A user of the HTTP service: its name, password and readonly level."""

    name: str
    password: str
    readonly: int

    def __repr__(self) -> str:
        return f"User(name={self.name!r}, readonly={self.readonly})"  # never the password


def users_from(credentials: Credentials, allow_no_password: bool) -> dict[str, User]:
    """Return the service's users; ``default`` aliases a password-less service user when that is allowed."""
    users = {
        credentials.user: User(credentials.user, credentials.password.get_secret_value(), READ_WRITE),
        credentials.analyst_user: User(
            credentials.analyst_user, credentials.analyst_password.get_secret_value(), READ_ONLY
        ),
    }
    if allow_no_password and not credentials.password.get_secret_value() and DEFAULT_USER not in users:
        users[DEFAULT_USER] = User(DEFAULT_USER, "", READ_WRITE)
    return users


def _failed(name: str) -> QueryError:
    return QueryError(
        AUTHENTICATION_FAILED,
        f"{name}: Authentication failed: password is incorrect, or there is no user with such name",
    )


def _invalid(reason: str) -> QueryError:
    return QueryError(AUTHENTICATION_FAILED, f"Invalid authentication: {reason}")


def presented_credentials(headers: Mapping[str, str], params: Mapping[str, str]) -> tuple[str, str]:
    """Return the (user, password) a request presents, refusing mixed schemes as ClickHouse does.

    Args:
        headers: request headers, names lower-cased.
        params: URL parameters.
    """
    header_user = headers.get("x-clickhouse-user", "")
    header_key = headers.get("x-clickhouse-key", "")
    authorization = headers.get("authorization", "")
    has_params = "user" in params or "password" in params
    if header_user or header_key:
        if authorization:
            raise _invalid(
                "it is not allowed to use X-ClickHouse HTTP headers and Authorization HTTP header simultaneously"
            )
        if has_params:
            raise _invalid(
                "it is not allowed to use X-ClickHouse HTTP headers and authentication via parameters simultaneously"
            )
        return header_user or DEFAULT_USER, header_key
    if authorization:
        if has_params:
            raise _invalid(
                "it is not allowed to use Authorization HTTP header and authentication via parameters simultaneously"
            )
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise _invalid(f"'{scheme}' HTTP Authorization scheme is not supported")
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _invalid("malformed Basic credentials") from exc
        user, _, password = decoded.partition(":")
        return user or DEFAULT_USER, password
    return params.get("user", "") or DEFAULT_USER, params.get("password", "")


def authenticate(users: Mapping[str, User], name: str, password: str) -> User:
    """Return the user ``name`` if ``password`` is theirs (compared in constant time).

    Raises:
        QueryError: AUTHENTICATION_FAILED, with ClickHouse's wording (never saying which part was wrong).
    """
    user = users.get(name)
    # Compare even for unknown users so the timing does not reveal which names exist.
    expected = user.password if user is not None else secrets_placeholder()
    if not hmac.compare_digest(password.encode(), expected.encode()) or user is None:
        raise _failed(name)
    return user


def secrets_placeholder() -> str:
    """A value no presented password equals, compared against for unknown users."""
    return "\x00unknown-user\x00"


def request_readonly(user: User, method: str) -> int:
    """Return the readonly level of a request: the user's, or 2 for a read-write user's GET."""
    if user.readonly:
        return user.readonly
    return READ_ONLY_SETTINGS_ALLOWED if method == "GET" else READ_WRITE
