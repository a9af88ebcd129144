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
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

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


# A user name the engine's users file can hold as an element name.
_ENGINE_USER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def is_engine_user(user: User) -> bool:
    """Return True for a user the engine's own user directory holds (:func:`write_engine_users`)."""
    return user.readonly == READ_WRITE and user.name != DEFAULT_USER and bool(_ENGINE_USER_NAME.fullmatch(user.name))


def write_engine_users(path: Path, users: Mapping[str, User]) -> Path:
    """Write the engine's own user directory to ``path`` (mode 0600, afresh at every start); return it.

    The engine runs every query as its local user ``default``; these users exist only so
    that a dictionary's ``CLICKHOUSE`` source naming a read-write HTTP user and its password
    (``SOURCE(CLICKHOUSE(user 'tickwave' password '...' db ... table ...))``, as dbt writes
    it) authenticates when the engine queries itself, in process: the engine checks the
    password against its SHA-256 here, from loopback only. The read-only users are not
    here: a dictionary naming the analyst stays refused (AUTHENTICATION_FAILED), as any
    other name does. ``default`` is the engine's own, as chdb defines it.
    """
    entries = [  # default may read the grants of these users: SHOW GRANTS names the HTTP user
        "<default><password></password><networks><ip>::/0</ip></networks>"
        "<profile>default</profile><quota>default</quota><access_management>1</access_management></default>"
    ]
    for user in users.values():
        if not is_engine_user(user):
            continue
        digest = hashlib.sha256(user.password.encode()).hexdigest()
        entries.append(
            f"<{user.name}><password_sha256_hex>{digest}</password_sha256_hex>"
            "<networks><ip>127.0.0.1</ip><ip>::1</ip></networks>"
            f"<profile>default</profile><quota>default</quota></{user.name}>"
        )
    text = (
        "<clickhouse>\n<profiles><default></default></profiles>\n<quotas><default></default></quotas>\n<users>\n"
        + "\n".join(entries)
        + "\n</users>\n</clickhouse>\n"
    )
    path.unlink(missing_ok=True)  # created anew, so its mode is never an earlier file's
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    return path
