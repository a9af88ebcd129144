"""Turn one HTTP request into a plan the engine can run: pure functions, no I/O.

ClickHouse's rules, in order: the SQL is the ``query`` parameter, a newline, then the
(decoded) body; ``database`` and ``default_format`` come from ``X-ClickHouse-Database``
/``X-ClickHouse-Format`` headers or parameters; ``param_<name>`` are query parameters;
the reserved transport parameters are consumed; every other parameter is a setting for
this query only. Settings that shape the HTTP exchange stay with the server; the rest go
to the engine, which rejects unknown names (UNKNOWN_SETTING) and settings a read-only
user may not change (READONLY).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import islice

from tickwave.warehouse.sqltext import quote_identifier, quote_literal, tokens
from warehouse_server.protocol import (
    BAD_ARGUMENTS,
    HTTP_LAYER_SETTINGS,
    QUERY_PARAM_PREFIX,
    READONLY,
    SYNTAX_ERROR,
    QueryError,
    is_setting_param,
)
from warehouse_server.query.routing import analyze
from warehouse_server.security.auth import READ_ONLY, READ_WRITE, User, is_engine_user, request_readonly

DEFAULT_FORMAT = "TabSeparated"
MAX_QUERY_SIZE = 262_144  # ClickHouse's max_query_size default: the most SQL a request may hold
# currentUser() and its aliases (ClickHouse's FunctionCurrentUser), lower-cased.
CURRENT_USER_FUNCTIONS = frozenset({"currentuser", "user", "current_user"})
_MAY_NAME_USER = re.compile(r"user\s*\(", re.IGNORECASE)
_MAY_SHOW_GRANTS = re.compile(r"\bGRANTS\b", re.IGNORECASE)


@dataclass(frozen=True)
class SessionRequest:
    """The session parameters of a request."""

    session_id: str
    timeout: str | None
    must_exist: bool
    close: bool


@dataclass(frozen=True)
class ExternalTable:
    """External data: a file of the request's form, a temporary table for this query only.

    Attributes:
        name: the table's name (the form field's).
        structure: its columns, ``name Type, ...`` (from ``<name>_structure``, or
            ``<name>_types`` with columns ``_1``, ``_2``...).
        input_format: the file's format (``<name>_format``, TabSeparated by default).
        data: the file's bytes.
    """

    name: str
    structure: str
    input_format: str
    data: bytes


@dataclass(frozen=True)
class Plan:
    """Everything the engine side needs to run one request.

    Attributes:
        sql: the statement (for an insert with data: the INSERT up to its FORMAT/VALUES).
        keyword: the statement's first keyword, upper-cased.
        insert_format: the input format when rows follow the statement.
        data: those rows (a view into the request body; empty otherwise).
        output_format: the format of the result.
        database: the database to use for this query only.
        engine_settings: settings for this query only, applied in the engine.
        http_settings: settings the server honours itself (compression, buffering...).
        query_params: values for ``{name:Type}`` placeholders.
        readonly: 0, 1 or 2 as ClickHouse's ``readonly`` setting.
        is_analyst: the user is read-only by role (stricter checks apply).
        query_id: the id echoed in ``X-ClickHouse-Query-Id``.
        session: the session to run in, if any.
        client_revision: the ``client_protocol_version`` the client announced (0: none);
            Native output is written for it (:mod:`warehouse_server.query.nativeframe`).
        external_tables: the request's external data, loaded before the query runs.
        vetted_is_read: set by the policy's check when it ran ahead of the start (the engine's
            parse: the statement only reads, so it answers with a result); None before.
    """

    sql: str
    keyword: str
    insert_format: str | None
    data: memoryview
    output_format: str
    database: str | None
    engine_settings: dict[str, str] = field(default_factory=dict)
    http_settings: dict[str, str] = field(default_factory=dict)
    query_params: dict[str, str] = field(default_factory=dict)
    readonly: int = READ_WRITE
    is_analyst: bool = False
    query_id: str = ""
    session: SessionRequest | None = None
    client_revision: int = 0
    external_tables: tuple[ExternalTable, ...] = ()
    vetted_is_read: bool | None = None

    def http_flag(self, name: str, default: bool) -> bool:
        """Return an HTTP-layer boolean setting of this request."""
        value = self.http_settings.get(name)
        return default if value is None else value.strip().lower() not in ("0", "false", "")


def full_query(query_param: str, body: bytes) -> bytes:
    """Return the request's text: the ``query`` parameter, a newline, then the body (ClickHouse's rule)."""
    return (query_param.encode("utf-8", "surrogateescape") + b"\n" + body) if query_param else body


def _readonly_level(user: User, method: str, settings: dict[str, str]) -> int:
    level = request_readonly(user, method)
    requested = settings.pop("readonly", None)
    if requested is None:
        return level
    if not requested.strip().isdigit():
        raise QueryError(BAD_ARGUMENTS, f"Invalid value '{requested}' for setting readonly")
    wanted = int(requested)
    if level and wanted != level:
        raise QueryError(READONLY, "Cannot modify 'readonly' setting in readonly mode")
    return max(level, wanted)


def plan(
    *,
    method: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    text: bytes,
    user: User,
    files: Mapping[str, bytes] | None = None,
) -> Plan:
    """Build the plan of one request.

    Args:
        method: ``GET`` or ``POST``.
        params: URL parameters (last value of each name).
        headers: request headers, names lower-cased.
        text: :func:`full_query` of the decoded body.
        user: the authenticated user.
        files: the file fields of a multipart form: external data tables.

    Raises:
        QueryError: for settings a read-only user may not change or an invalid ``readonly``.
    """
    settings = {name: value for name, value in params.items() if is_setting_param(name)}
    external_tables = tuple(_external_table(name, data, settings) for name, data in (files or {}).items())
    readonly = _readonly_level(user, method, settings)
    http_settings = {name: settings.pop(name) for name in list(settings) if name in HTTP_LAYER_SETTINGS}
    if user.readonly == READ_ONLY and http_settings:
        name = next(iter(http_settings))
        raise QueryError(READONLY, f"Cannot modify '{name}' setting in readonly mode")
    max_query_size = _max_query_size(user, settings)
    statement = analyze(text, max_query_size)
    insert = statement.insert
    if insert is not None:
        sql, data = insert.statement, memoryview(text)[insert.data_offset :]
    elif len(text) > max_query_size:
        # The engine would parse it whole (8 MiB of SQL cost it ~600 MiB); ClickHouse refuses it so.
        raise QueryError(SYNTAX_ERROR, f"Max query size exceeded: {len(text)} bytes (max_query_size {max_query_size})")
    else:
        # Bytes that are not UTF-8 (binary literals) survive the decoding: engine_text() restores them.
        sql, data = text.decode("utf-8", errors="surrogateescape"), memoryview(b"")
        sql = bind_current_user(sql, user.name)
        if is_engine_user(user):
            sql = bind_show_grants(sql, user.name)
    default_format = headers.get("x-clickhouse-format") or params.get("default_format") or DEFAULT_FORMAT
    session_id = params.get("session_id", "")
    session = None
    if session_id:
        session = SessionRequest(
            session_id=session_id,
            timeout=params.get("session_timeout"),
            must_exist=params.get("session_check", "0") not in ("0", ""),
            close=params.get("close_session", "0") not in ("0", ""),
        )
    return Plan(
        sql=sql,
        keyword=statement.keyword,
        insert_format=insert.input_format if insert else None,
        data=data,
        output_format=statement.output_format or default_format,
        database=headers.get("x-clickhouse-database") or params.get("database") or None,
        engine_settings=settings,
        http_settings=http_settings,
        query_params={
            name.removeprefix(QUERY_PARAM_PREFIX): value
            for name, value in params.items()
            if name.startswith(QUERY_PARAM_PREFIX)
        },
        readonly=readonly,
        is_analyst=user.readonly == READ_ONLY,
        query_id=params.get("query_id") or headers.get("x-clickhouse-query-id") or str(uuid.uuid4()),
        session=session,
        client_revision=_client_revision(params.get("client_protocol_version", "")),
        external_tables=external_tables,
    )


def _external_table(name: str, data: bytes, settings: dict[str, str]) -> ExternalTable:
    # ClickHouse reads <name>_format, <name>_structure or <name>_types: parameters of the table, not settings.
    input_format = settings.pop(f"{name}_format", "") or "TabSeparated"
    structure = settings.pop(f"{name}_structure", "")
    types = settings.pop(f"{name}_types", "")
    if not structure and types:
        structure = ", ".join(f"_{index} {kind.strip()}" for index, kind in enumerate(types.split(","), start=1))
    if not structure:
        raise QueryError(BAD_ARGUMENTS, f"Neither structure nor types have not been provided for external table {name}")
    return ExternalTable(name, structure, input_format, data)


def bind_current_user(sql: str, user: str) -> str:
    """Return ``sql`` with every ``currentUser()`` call (or alias) answered by ``user``, the HTTP user.

    The engine runs in local mode, where every query runs as ``default``; a ClickHouse server
    answers the authenticated user. Each call becomes that name as a literal aliased to the
    call's own text, so a result column keeps its name (``currentUser()``). Strings, quoted
    identifiers and comments are skipped by the lexer; a qualified ``x.user()`` is left alone.
    """
    if not _MAY_NAME_USER.search(sql):
        return sql
    found = list(tokens(sql))
    pieces: list[str] = []
    copied = 0
    for index, token in enumerate(found[:-2]):
        is_call = found[index + 1].text == "(" and found[index + 2].text == ")"
        is_qualified = index > 0 and found[index - 1].text == "."
        if token.kind == "word" and token.text.lower() in CURRENT_USER_FUNCTIONS and is_call and not is_qualified:
            pieces += [sql[copied : token.start], f"({quote_literal(user)} AS {quote_identifier(token.text + '()')})"]
            copied = found[index + 2].end
    return "".join(pieces) + sql[copied:] if pieces else sql


def bind_show_grants(sql: str, user: str) -> str:
    """Return ``sql`` with a ``SHOW GRANTS`` of no one in particular made ``SHOW GRANTS FOR user``, the HTTP user.

    The engine runs every query as its local user ``default``, so its own ``SHOW GRANTS`` names
    ``default``; the HTTP user is in the engine's user directory with the grants it has here.
    """
    found = list(islice(tokens(sql), 3)) if _MAY_SHOW_GRANTS.search(sql) else []
    words = [token.text.upper() for token in found[:3]]
    if words[:2] != ["SHOW", "GRANTS"] or (len(words) == 3 and words[2] == "FOR"):
        return sql
    end = found[1].end
    return f"{sql[:end]} FOR {quote_identifier(user)}{sql[end:]}"


def _max_query_size(user: User, settings: Mapping[str, str]) -> int:
    # A read-write user may raise it per query, as in ClickHouse; a read-only user may not.
    requested = settings.get("max_query_size", "")
    return int(requested) if user.readonly != READ_ONLY and requested.isdigit() else MAX_QUERY_SIZE


def _client_revision(value: str) -> int:
    # A malformed revision counts as none, as ClickHouse ignores what it cannot parse here.
    return int(value) if value.isdigit() and len(value) <= 10 else 0
