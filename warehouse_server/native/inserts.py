"""An INSERT over the native protocol: the header block the client fills, from the engine's description.

A native client sends ``INSERT INTO t (a, b) VALUES`` with no rows and waits for the
server's header block: the columns it must send and their types. The server asks the
engine to describe the target table or table function (``DESCRIBE TABLE``, on the statement's own database)
and keeps the named columns, in the statement's order, or, without a list, the columns an
INSERT fills by default (no ``MATERIALIZED``, ``ALIAS`` or ``EPHEMERAL`` ones).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tickwave.warehouse.sqltext import tokens
from warehouse_server.protocol import SYNTAX_ERROR, QueryError, one_line_type
from warehouse_server.query.nativeframe import empty_block

_FILLED_BY_DEFAULT = ("", "DEFAULT")


def insert_target(statement: str) -> tuple[str, list[str]]:
    """Return what an ``INSERT INTO`` statement fills (a table, or a table function's call, as written) and its columns.

    The columns are the statement's list, unquoted ([] if none). ``INSERT INTO FUNCTION f(...)``
    gives ``f(...)``, which ``DESCRIBE TABLE`` describes as it describes a table.

    Raises:
        QueryError: SYNTAX_ERROR when no table or function is named.
    """
    found = [token for token in tokens(statement)]
    words = [token.upper for token in found[:3]]
    index = 3 if words[:3] in (["INSERT", "INTO", "TABLE"], ["INSERT", "INTO", "FUNCTION"]) else 2
    if words[:2] != ["INSERT", "INTO"] or index >= len(found):
        raise QueryError(SYNTAX_ERROR, f"Cannot find the table of: {statement}")
    after = found[index].start  # where a column list may begin: past the table function's arguments
    if words[2] == "FUNCTION":
        arguments = found[index + 1] if index + 1 < len(found) else None
        if arguments is None or arguments.kind != "open" or arguments.depth != 0:
            raise QueryError(SYNTAX_ERROR, f"Cannot find the table function of: {statement}")
        closing = next((token for token in found[index + 2 :] if token.kind == "close" and token.depth == 0), None)
        if closing is None:
            raise QueryError(SYNTAX_ERROR, f"Unclosed arguments of the table function in: {statement}")
        after = closing.end
    opening = next(
        (token for token in found if token.start >= after and token.kind == "open" and token.depth == 0), None
    )
    if opening is not None:
        end = opening.start
    elif words[2] == "FUNCTION":
        end = after  # the call ends the target: what follows is FORMAT, VALUES or SETTINGS
    else:
        end = len(statement)
    table = statement[found[index].start : end].strip()
    if opening is None:
        return table, []
    columns = [
        token.name
        for token in found
        if token.depth == 1 and token.start > opening.start and token.name and token.kind in ("word", "quoted")
    ]
    return table, columns


def header_columns(description: bytes, wanted: list[str]) -> list[tuple[str, str]]:
    """Return (name, type) of the columns an INSERT fills, from ``DESCRIBE TABLE`` as JSONEachRow.

    Raises:
        QueryError: NOT_IMPLEMENTED (as ClickHouse's NO_SUCH_COLUMN_IN_TABLE would) for a column the table lacks.
    """
    rows = [json.loads(line) for line in description.splitlines() if line.strip()]
    types = {str(row["name"]): one_line_type(str(row["type"])) for row in rows}
    if not wanted:
        return [
            (str(row["name"]), types[str(row["name"])])
            for row in rows
            if row.get("default_type", "") in _FILLED_BY_DEFAULT
        ]
    missing = [name for name in wanted if name not in types]
    if missing:
        raise QueryError(16, f"No such column {missing[0]} in table")  # NO_SUCH_COLUMN_IN_TABLE
    return [(name, types[name]) for name in wanted]


def describe_insert(statement: str, describe: Callable[[str], bytes]) -> bytes:
    """Return the header block (revision 0) of ``statement``; ``describe`` runs SQL as JSONEachRow on its handle."""
    table, wanted = insert_target(statement)
    return empty_block(header_columns(describe(f"DESCRIBE TABLE {table}"), wanted))
