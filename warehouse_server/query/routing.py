"""Route a ClickHouse HTTP request by its SQL, without parsing SQL.

The HTTP interface concatenates the ``query`` parameter, a newline and the body; for
``INSERT ... FORMAT X`` the bytes after the format name are data, not SQL (ClickHouse:
"data starts after the first newline, if there is one, or after all the whitespace
characters, otherwise"). The server needs two facts it cannot get from the engine
before running the statement:

- where the SQL of an INSERT ends and its data begins, and the input format;
- the output format a query names (``... FORMAT JSON``), for the response headers.

Nothing here decides security: the read-only policy runs on the engine's own parse tree
(:mod:`warehouse_server.security.policy`), so a misread here can only mislabel a response.

Everything works on a latin-1 view of the bytes, so offsets are byte offsets and binary
data after the SQL never needs to be valid text. Quoted strings, quoted identifiers and
comments are skipped, so ``'FORMAT'`` inside a literal is never mistaken for a clause.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from tickwave.warehouse.sqltext import Token, tokens


@dataclass(frozen=True)
class InsertData:
    """An INSERT whose rows follow the SQL: the statement, the input format, where data starts."""

    statement: str
    input_format: str
    data_offset: int


@dataclass(frozen=True)
class Statement:
    """What the router knows about a request's SQL.

    Attributes:
        keyword: the first keyword, upper-cased (``SELECT``, ``INSERT``...); empty if none.
        output_format: the format named by a top-level ``FORMAT`` clause of a non-INSERT.
        insert: set when the statement is an INSERT followed by data in some format.
    """

    keyword: str
    output_format: str | None
    insert: InsertData | None


def _data_start(text: str, position: int) -> int:
    # ClickHouse: skip spaces and tabs, then at most one CR and one LF; the rest is data.
    while position < len(text) and text[position] in " \t\f":
        position += 1
    if position < len(text) and text[position] == "\r":
        position += 1
    if position < len(text) and text[position] == "\n":
        position += 1
    return position


def _insert_data(view: str, stream: Iterator[Token]) -> InsertData | None:
    is_select = False  # INSERT ... SELECT: a later `values(...)` is a table function, not the clause
    previous: Token | None = None
    for token in stream:
        # A word right after INTO, TABLE, FUNCTION or a dot names the target: a table may be called `values`.
        is_name = previous is not None and (previous.upper in ("INTO", "TABLE", "FUNCTION") or previous.text == ".")
        previous = token if token.depth == 0 else previous
        if token.depth != 0 or token.kind != "word" or is_name:
            continue
        is_select = is_select or token.upper in ("SELECT", "WITH")
        if token.upper == "VALUES" and not is_select:
            return InsertData(view[: token.start].rstrip(), "Values", token.end)
        if token.upper == "FORMAT":
            name = next(stream, None)
            if name is None or not name.name:
                return None
            return InsertData(view[: token.start].rstrip(), name.name, _data_start(view, name.end))
    return None


def _with_insert(view: str, stream: Iterator[Token]) -> bool:
    # After WITH, the statement is the first top-level SELECT or INSERT INTO (a CTE's own SELECT is
    # nested; `insert` alone is a CTE or alias name; `{select:Int32}` is a parameter's name); the
    # stream is left just past INTO, where the table and data clause follow.
    for token in stream:
        if token.depth != 0 or token.kind != "word" or view[: token.start].endswith("{"):
            continue
        if token.upper == "SELECT":
            return False
        if token.upper == "INSERT":
            following = next(stream, None)
            if following is not None and following.upper == "INTO":
                return True
    return False


def _output_format(stream: Iterator[Token]) -> str | None:
    found: str | None = None
    previous: Token | None = None
    for token in stream:
        if previous is not None and previous.depth == 0 and previous.kind == "word" and previous.upper == "FORMAT":
            found = token.name or found
        previous = token
    return found


def removes_database(sql: str, name: str) -> bool:
    """Whether ``sql`` drops, detaches or renames the database ``name`` (``DROP DATABASE [IF EXISTS] name``...)."""
    found = list(itertools.islice(tokens(sql), 5))
    words = [token.upper for token in found]
    if len(found) < 3 or words[0] not in ("DROP", "DETACH", "RENAME") or words[1] != "DATABASE":
        return False
    index = 4 if words[2:4] == ["IF", "EXISTS"] else 2
    return index < len(found) and found[index].name == name


def without_format(sql: str) -> str:
    """Return a query's SQL without its top-level ``FORMAT name`` clause (to nest it in another statement)."""
    stream = tokens(sql)
    for token in stream:
        if token.depth == 0 and token.kind == "word" and token.upper == "FORMAT":
            name = next(stream, None)
            end = name.end if name is not None and name.name else token.end
            return sql[: token.start] + sql[end:]
    return sql


def analyze(query: bytes, sql_limit: int) -> Statement:
    """Describe the SQL at the start of ``query`` (query parameter, newline, body).

    Args:
        query: the full request text; for inserts, data may follow the SQL.
        sql_limit: how many bytes may hold SQL (ClickHouse's ``max_query_size``); an
            INSERT whose data has not started by then is treated as plain SQL.

    Returns:
        The first keyword, the output format of a query, or where an INSERT's data starts.
    """
    view = query[:sql_limit].decode("latin-1")
    stream = tokens(view)
    first = next((token for token in stream if token.kind == "word"), None)
    keyword = first.upper if first else ""
    if keyword == "WITH" and _with_insert(view, stream):
        keyword = "INSERT"  # WITH ... INSERT INTO t SELECT ...: a write, whatever its first word
    if keyword == "INSERT":
        insert = _insert_data(view, stream)
        if insert is not None:
            statement = query[: len(insert.statement)].decode("utf-8", errors="surrogateescape")
            return Statement(keyword, None, InsertData(statement, insert.input_format, insert.data_offset))
        return Statement(keyword, None, None)
    return Statement(keyword, _output_format(tokens(view)), None)


SESSION_KEYWORDS = frozenset({"SET", "USE"})


def leaves_session_state(sql: str, keyword: str) -> bool:
    """Whether the statement changes its session: ``SET``, ``USE`` or ``CREATE [OR REPLACE] TEMPORARY TABLE``.

    A misread here only runs a statement without a session (as an HTTP request without
    ``session_id`` runs); nothing here decides what a user may do.
    """
    if keyword in SESSION_KEYWORDS:
        return True
    if keyword != "CREATE":
        return False
    words = [token.upper for token in itertools.islice(tokens(sql), 4) if token.kind == "word"]
    return "TEMPORARY" in words
