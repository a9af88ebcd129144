"""An INSERT over the native protocol: the header block the client fills, from the engine's description.

A native client sends ``INSERT INTO t (a, b) VALUES`` with no rows and waits for the
server's header block: the columns it must send and their types. The server asks the
engine to describe the target table (``DESCRIBE TABLE``, on the statement's own database)
and keeps the named columns, in the statement's order, or, without a list, the columns an
INSERT fills by default (no ``MATERIALIZED``, ``ALIAS`` or ``EPHEMERAL`` ones).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from tickwave.warehouse.sqltext import tokens
from warehouse_server.protocol import NOT_IMPLEMENTED, SYNTAX_ERROR, QueryError
from warehouse_server.query.nativeframe import empty_block

_FILLED_BY_DEFAULT = ("", "DEFAULT")


def insert_target(statement: str) -> tuple[str, list[str]]:
    """Return the table an ``INSERT INTO`` statement names (as written) and its column list (unquoted; [] if none).

    Raises:
        QueryError: NOT_IMPLEMENTED for ``INSERT INTO FUNCTION``; SYNTAX_ERROR when no table is named.
    """
    found = [token for token in tokens(statement)]
    words = [token.upper for token in found[:3]]
    index = 3 if words[:3] == ["INSERT", "INTO", "TABLE"] else 2
    if words[:2] != ["INSERT", "INTO"] or index >= len(found):
        raise QueryError(SYNTAX_ERROR, f"Cannot find the table of: {statement}")
    if found[index].upper == "FUNCTION":
        raise QueryError(NOT_IMPLEMENTED, "INSERT INTO FUNCTION with data blocks is not supported over the native port")
    opening = next((token for token in found[index:] if token.kind == "open" and token.depth == 0), None)
    end = opening.start if opening is not None else len(statement)
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
    types = {str(row["name"]): str(row["type"]) for row in rows}
    if not wanted:
        return [
            (str(row["name"]), str(row["type"])) for row in rows if row.get("default_type", "") in _FILLED_BY_DEFAULT
        ]
    missing = [name for name in wanted if name not in types]
    if missing:
        raise QueryError(16, f"No such column {missing[0]} in table")  # NO_SUCH_COLUMN_IN_TABLE
    return [(name, types[name]) for name in wanted]


def describe_insert(statement: str, describe: Callable[[str], bytes]) -> bytes:
    """Return the header block (revision 0) of ``statement``; ``describe`` runs SQL as JSONEachRow on its handle."""
    table, wanted = insert_target(statement)
    return empty_block(header_columns(describe(f"DESCRIBE TABLE {table}"), wanted))
