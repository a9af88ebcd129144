"""The read-only policy, decided on the engine's own parse tree (``EXPLAIN AST``), never on text.

Every read-only request (the analyst, or a GET) is parsed by ClickHouse itself: the
statement count comes from chdb's ``classify_query`` and the tree from ``EXPLAIN AST``
on the request's own handle, with its query parameters substituted. The tree is then
checked against allow-lists (:mod:`warehouse_server.security.allowlist`); whatever is not on
them is refused, so what a later ClickHouse adds stays refused until it is reviewed:

- one statement, and a read (:data:`~warehouse_server.security.allowlist.READ_ROOTS`: SELECT and
  set operations, SHOW tables/columns/create, DESCRIBE, EXISTS, EXPLAIN of one of those,
  USE; and SET for a GET of the service user, whose ``readonly=2`` allows settings);
- every node kind on the allow-list: ``* APPLY(f)`` and ``* REPLACE(...)`` are refused,
  since the dump prints them without the function they call;
- a literal only where it is a value: under a statement node it is an ``INTO OUTFILE``
  target (or its compression), refused in any statement (DESCRIBE, SHOW, EXISTS too);
- every function resolving (aliases, combinators) to a built-in function of an allowed
  category or list, and in the reviewed snapshot (:mod:`warehouse_server.security.catalog`);
  unknown names are refused;
- every table function on the allow-list; for the analyst, no ``SETTINGS`` clause, system
  tables only from the allow-list, and in a query block reading ``system.databases``,
  ``tables``, ``parts`` or ``parts_columns`` only their columns without host paths;
- for the analyst, a table allow-list wherever the tree names a table or database (FROM,
  JOIN, DESCRIBE, EXISTS, SHOW CREATE, SHOW TABLES FROM, USE, ``IN db.t``): names are plain
  (``[A-Za-z_][A-Za-z0-9_]*``, at most ``db.table``), and the database is ``system`` (its
  allow-listed tables) or one whose engine keeps the service's own tables
  (:data:`~warehouse_server.security.allowlist.STORAGE_DATABASE_ENGINES`), never the engine's default
  Overlay database, whose tables are host files (``EXISTS TABLE `/etc/shadow```);
- output formats only from an allow-list (none that reads a schema or template file of the host,
  or reaches a schema registry); the engine's formats are reviewed like its functions.

The dump of ``EXPLAIN AST`` is an indented tree whose lines carry ``(children N)``: it is
parsed by indentation and every count is checked, so a name with a line break in it
(which the dump prints raw) can only add lines, never hide one; a tree that does not
add up is refused. Verdicts are cached by the exact text and parameters (the tree is a
function of them), so a dashboard's repeated query costs a dictionary lookup.

The check is linear in the tree: a tree of more than :data:`MAX_AST_NODES` nodes is refused
before it is built (ClickHouse's ``max_ast_elements``), and each query block reading a
system table with host paths is walked once, whatever the number of such tables in it
(four queries joining 1,500 system tables took 145 s each when every table walked its block).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from warehouse_server.protocol import READONLY, QueryError
from warehouse_server.security.allowlist import (
    ALLOWED_NODE_KINDS,
    ALLOWED_SYSTEM_TABLES,
    ALLOWED_TABLE_FUNCTIONS,
    DATABASE_NAMING_ROOTS,
    ENGINE_OUTPUT_FORMATS,
    FORMAT_ONLY_ROOTS,
    LITERAL_PARENTS,
    OUTPUT_FORMATS,
    PARSER_AGGREGATES,
    PARSER_FUNCTIONS,
    READ_ROOTS,
    REFUSED_OUTPUT_FORMATS,
    SET_FUNCTIONS,
    STORAGE_DATABASE_ENGINES,
    SYSTEM_DATABASE,
    SYSTEM_TABLE_COLUMNS,
    TABLE_NAMING_ROOTS,
    UNCHECKABLE_ROOTS,
)
from warehouse_server.security.catalog import (
    DatabaseCatalog,
    FunctionCatalog,
    FunctionInfo,
    is_allowed_kind,
    read_catalog,
    read_databases,
    read_system_columns,
    reviewed_functions,
)

__all__ = [
    "AstNode",
    "DatabaseCatalog",
    "FunctionCatalog",
    "FunctionInfo",
    "ReadOnlyPolicy",
    "Request",
    "parse_ast",
    "read_catalog",
    "read_databases",
    "read_system_columns",
]

_CHILDREN = re.compile(r" \(children (\d+)\)$")
_ALIAS = re.compile(r" \(alias ([^\n]*)\)$")
CACHE_SIZE = 4096
MAX_AST_NODES = 50_000  # ClickHouse's max_ast_elements
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MATCHER_KINDS = frozenset(
    {
        "Asterisk",
        "QualifiedAsterisk",
        "ColumnsRegexpMatcher",
        "ColumnsListMatcher",
        "QualifiedColumnsRegexpMatcher",
        "QualifiedColumnsListMatcher",
    }
)
HIDDEN_CALLS = {
    "ColumnsApplyTransformer": "APPLY (the parse tree does not name the function it calls)",
    "ColumnsReplaceTransformer": "REPLACE in a column list",
}


@dataclass
class AstNode:
    """One node of the engine's parse tree: its kind (``Function``, ``Literal``...), label, alias and children."""

    kind: str
    label: str
    declared: int
    alias: str = ""
    children: list[AstNode] = field(default_factory=list)
    parent: AstNode | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        """The first word of the label (a function's or identifier's name)."""
        return self.label.split(" ", 1)[0] if self.label else ""

    def walk(self) -> Iterator[AstNode]:
        """Yield this node and every node below it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def ancestors(self) -> Iterator[AstNode]:
        """Yield the parent, its parent, ... up to the root."""
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


def _refuse(message: str) -> QueryError:
    return QueryError(READONLY, f"{message}; not allowed in readonly mode")


class _UnknownDatabase(QueryError):
    """A refusal that a later catalog may lift (the database may be created): never cached."""


def parse_ast(dump: str) -> AstNode:
    """Parse the text of ``EXPLAIN AST`` into a tree, checking every ``(children N)``.

    Raises:
        QueryError: READONLY when the dump is not one consistent tree.
    """
    if dump.count("\n") > MAX_AST_NODES:
        raise _refuse(f"A statement of more than {MAX_AST_NODES} parse tree nodes (max_ast_elements)")
    root = AstNode("", "", -1)
    stack: list[tuple[int, AstNode]] = [(-1, root)]
    for line in dump.split("\n"):
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        text = line[indent:]
        declared = 0
        match = _CHILDREN.search(text)
        if match:
            declared = int(match.group(1))
            text = text[: match.start()]
        kind, _, label = text.partition(" ")
        label = label.strip()
        alias = _ALIAS.search(label)
        if alias:
            label = label[: alias.start()]
        while stack[-1][0] >= indent:
            stack.pop()
        if stack[-1][0] != indent - 1 and stack[-1][1] is not root:
            raise _refuse("The statement's parse tree could not be verified")
        parent = stack[-1][1]
        node = AstNode(kind, label, declared, alias.group(1) if alias else "", parent=parent)
        parent.children.append(node)
        stack.append((indent, node))
    for node in root.walk():
        if node is not root and len(node.children) != node.declared:
            raise _refuse("The statement's parse tree could not be verified")
    if len(root.children) != 1:
        raise _refuse("The statement's parse tree could not be verified")
    statement = root.children[0]
    statement.parent = None
    return statement


@dataclass(frozen=True)
class Request:
    """What the policy looks at besides the tree: who asks, where, in which format."""

    is_analyst: bool
    database: str
    output_format: str


class ReadOnlyPolicy:
    """Decides whether a read-only request may run, from the engine's parse tree."""

    def __init__(
        self,
        catalog: FunctionCatalog,
        databases: DatabaseCatalog,
        cache_size: int = CACHE_SIZE,
        reviewed: frozenset[str] | None = None,
        system_columns: Mapping[str, frozenset[str]] | None = None,
    ) -> None:
        """Check functions against ``catalog`` and the ``reviewed`` snapshot, tables against ``databases``.

        ``system_columns`` are the engine's columns of the system tables holding host paths
        (:func:`~warehouse_server.security.catalog.read_system_columns`): with them a name that is
        none of their columns (a join's alias, an ``ARRAY JOIN ... AS c``) is known not to read
        one; without them every name may be one, so only their allowed columns pass. Remember
        ``cache_size`` verdicts.
        """
        self.catalog = catalog
        self.databases = databases
        self.system_columns = system_columns
        self.reviewed = reviewed_functions() if reviewed is None else reviewed
        self._cache: OrderedDict[tuple[object, ...], QueryError | None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def check(self, sql: str, params: Mapping[str, str], request: Request, explain: Callable[[str], str]) -> None:
        """Refuse ``sql`` unless the policy allows it.

        Args:
            sql: the one statement the request runs (the engine counted it).
            params: its query parameters (substituted before parsing, as the engine will).
            request: the user's role, current database and output format.
            explain: runs ``EXPLAIN AST <sql>`` on the request's handle and returns the dump.

        Raises:
            QueryError: READONLY with the reason.
        """
        key = (sql, tuple(sorted(params.items())), request)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                verdict = self._cache[key]
                if verdict is not None:
                    raise verdict
                return
        try:
            self._decide(parse_ast(explain(sql)), request)
            verdict = None
        except _UnknownDatabase:
            raise  # not remembered: the database may exist on the next request
        except QueryError as refusal:
            if refusal.code != READONLY:
                raise  # a syntax error or unknown parameter: the engine's answer, not a verdict
            verdict = refusal
        with self._lock:
            self._cache[key] = verdict
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        if verdict is not None:
            raise verdict

    def _decide(self, statement: AstNode, request: Request) -> None:
        if statement.kind == "Set" and not request.is_analyst:
            return
        explained = [child for child in statement.children if child.kind in READ_ROOTS]
        root = explained[0] if statement.kind == "Explain" and explained else statement
        if statement.kind not in READ_ROOTS or root.kind not in READ_ROOTS:
            raise QueryError(READONLY, "Cannot execute query in readonly mode")
        if request.output_format and request.output_format.lower() not in OUTPUT_FORMATS:
            raise _refuse(f"Format {request.output_format} (not on the allow-list)")
        if request.is_analyst and request.database == SYSTEM_DATABASE:
            raise _refuse(f"Database {request.database} as the current database")
        if statement.kind == "UseQuery" and request.is_analyst and statement.name == SYSTEM_DATABASE:
            raise _refuse(f"USE {statement.name}")
        if request.is_analyst:
            self._check_database(request.database, "as the current database")
        blocks: dict[int, _Block] = {}  # query blocks reading path-holding system tables
        for node in statement.walk():
            self._check_node(node, request)
            if request.is_analyst:
                self._check_names(node, request, blocks)
        for block in blocks.values():
            _check_block_columns(block, self.system_columns)

    def _check_names(self, node: AstNode, request: Request, blocks: dict[int, _Block]) -> None:
        # The table allow-list: every place the tree names a table or a database.
        parent = node.parent
        if node.kind in UNCHECKABLE_ROOTS:
            raise _refuse(f"{node.kind} (the parse tree does not name its table: use DESCRIBE TABLE)")
        if node.kind in TABLE_NAMING_ROOTS:
            self._check_named_table(node, request)
        elif node.kind == "TableIdentifier":
            self._check_table(node.label, request, node, blocks)
        elif node.kind == "Identifier" and parent is not None and parent.kind in DATABASE_NAMING_ROOTS:
            is_format = node is parent.children[-1] and node.label.lower() in OUTPUT_FORMATS
            if not is_format:  # SHOW TABLES FORMAT JSON: the last Identifier is the format
                self._check_database(node.label, f"in {parent.kind}")
        elif node.kind == "Identifier" and _is_set_operand(node):
            self._check_table(node.label, request, node, blocks)

    def _check_named_table(self, root: AstNode, request: Request) -> None:
        # EXISTS / SHOW CREATE: the label is "[database] table", then one Identifier per part (then the format).
        parts = root.label.split()
        names = [child.label for child in root.children if child.kind == "Identifier"]
        if not 1 <= len(parts) <= 2 or names[: len(parts)] != parts:
            raise _refuse(f"{root.kind} of a name the parse tree does not spell plainly")
        self._check_table(".".join(parts), request, root, {})

    def _check_table(self, name: str, request: Request, node: AstNode, blocks: dict[int, _Block]) -> None:
        parts = name.split(".")
        if len(parts) > 2 or not all(_PLAIN_NAME.fullmatch(part) for part in parts):
            raise _refuse(f"Table {name} (a table is named by plain words: database.table)")
        database, table = (parts[0], parts[1]) if len(parts) == 2 else (request.database, parts[0])
        if database != SYSTEM_DATABASE:
            self._check_database(database, f"holding table {table}")
            return
        if table not in ALLOWED_SYSTEM_TABLES:
            raise _refuse(f"Table system.{table}")
        if table not in SYSTEM_TABLE_COLUMNS:
            return
        if node.kind != "TableIdentifier":
            raise _refuse(f"Table system.{table} as a set")
        block = next((above for above in node.ancestors() if above.kind == "SelectQuery"), None)
        if block is not None:  # DESCRIBE, SHOW CREATE: column names and types only
            qualifiers = {(table,), (SYSTEM_DATABASE, table)} | ({(node.alias,)} if node.alias else set())
            blocks.setdefault(id(block), _Block(block)).tables.append((table, frozenset(qualifiers)))

    def _check_database(self, database: str, where: str) -> None:
        if database == SYSTEM_DATABASE:
            return
        engine = self.databases.engine(database) if _PLAIN_NAME.fullmatch(database) else None
        if engine is None:
            raise _UnknownDatabase(READONLY, f"Database {database} {where} is unknown; not allowed in readonly mode")
        if engine not in STORAGE_DATABASE_ENGINES:
            raise _refuse(f"Database {database} {where} (engine {engine}: not the warehouse's storage)")

    def _check_node(self, node: AstNode, request: Request) -> None:
        if node.kind not in ALLOWED_NODE_KINDS:
            raise _refuse(HIDDEN_CALLS.get(node.kind) or f"{node.kind or 'An unnamed node'} (not on the allow-list)")
        parent = node.parent
        if node.kind == "Literal" and parent is not None and parent.kind not in LITERAL_PARENTS:
            raise _refuse("INTO OUTFILE")
        if node.kind == "Identifier" and parent is not None and parent.kind in READ_ROOTS:
            _check_format(node.name, parent.kind)
        if node.kind == "Set" and request.is_analyst:
            raise _refuse("Changing settings (a SETTINGS clause)")
        if node.kind == "Function":
            self._check_function(node)

    def _check_function(self, node: AstNode) -> None:
        name = node.name
        if node.parent is not None and node.parent.kind == "TableExpression":
            if name.lower() not in ALLOWED_TABLE_FUNCTIONS:
                raise _refuse(f"Table function {name}")
            return
        resolved = self.catalog.find(name)
        if resolved is None:
            raise _refuse(f"Function {name} (unknown to the engine's catalog)")
        canonical, info = resolved
        is_reviewed = canonical in self.reviewed or canonical in PARSER_FUNCTIONS | PARSER_AGGREGATES
        if not (is_allowed_kind(canonical, info) and is_reviewed):
            what = info.category or info.origin
            raise _refuse(f"Function {name} ({canonical}: {what}) is not on the read-only allow-list")


def _check_format(name: str, root_kind: str) -> None:
    # An Identifier child of a statement: its FORMAT clause, or (under SHOW and EXISTS) a name.
    lowered = name.lower()
    if lowered in OUTPUT_FORMATS:
        return
    if root_kind in FORMAT_ONLY_ROOTS or lowered in ENGINE_OUTPUT_FORMATS:
        raise _refuse(f"Format {name} ({REFUSED_OUTPUT_FORMATS.get(lowered, 'not on the allow-list')})")


def _is_set_operand(node: AstNode) -> bool:
    # The second argument of IN and its kin, when a bare name, is a table read as a set.
    arguments = node.parent
    function = arguments.parent if arguments is not None else None
    return (
        arguments is not None
        and function is not None
        and function.kind == "Function"
        and function.name in SET_FUNCTIONS
        and len(arguments.children) == 2
        and arguments.children[1] is node
    )


_Scope = tuple[frozenset[str], frozenset[tuple[str, ...]]]  # a query block's own aliases and table qualifiers
_NESTED_SCOPES = frozenset({"Subquery", "SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery"})


@dataclass
class _Block:
    """A query block reading system tables with host paths: each such table and the qualifiers naming it."""

    node: AstNode
    tables: list[tuple[str, frozenset[tuple[str, ...]]]] = field(default_factory=list)


def _scope_names(scope: AstNode) -> _Scope:
    """The expression aliases and the table qualifiers a query block defines for itself.

    Its own scope only: not what a subquery inside it defines (an identifier of the block never
    resolves there). A table's qualifiers are its alias, its name and ``database.name``.
    """
    aliases: set[str] = set()
    qualifiers: set[tuple[str, ...]] = set()
    pending = list(scope.children)
    while pending:
        node = pending.pop()
        parent = node.parent
        if parent is not None and parent.kind == "TableExpression":
            if node.alias:
                qualifiers.add((node.alias,))
            if node.kind == "TableIdentifier":
                parts = tuple(node.label.split("."))
                qualifiers.update({parts, parts[-1:]})
            continue
        if node.alias:
            aliases.add(node.alias)
        if node.kind not in _NESTED_SCOPES:
            pending.extend(node.children)
    return frozenset(aliases), frozenset(qualifiers)


def _check_block_columns(block: _Block, system_columns: Mapping[str, frozenset[str]] | None) -> None:
    """In a query block reading system tables with host paths, refuse any name that may read another column.

    Each identifier is read every way the engine could read it, and each reading must be
    harmless: as a column of such a table (its first part, ``data_path`` or ``data_path.size``)
    it must be one of the table's allowed columns; qualified by such a table (``t.x``,
    ``tables.x``, ``system.tables.x``) the column after the qualifier must be allowed. And the
    name must resolve inside the block, to an allowed column, a table's qualifier or an alias
    the block (or the subquery the name is in, up to the block) defines, whose definition is
    checked here too: a name it does not define could reach an alias of an enclosing query
    (``WITH data_path AS x SELECT (SELECT x FROM system.databases)`` reads the path).
    Linear: each identifier costs a lookup per prefix of its name, whatever the tables joined.
    """
    tables = sorted({table for table, _ in block.tables})
    qualified: dict[tuple[str, ...], set[str]] = {}
    for table, qualifiers in block.tables:
        for qualifier in qualifiers:
            qualified.setdefault(qualifier, set()).add(table)
    heads = {
        table: None if system_columns is None else {column.split(".", 1)[0] for column in system_columns[table]}
        for table in tables
    }
    scopes: dict[int, _Scope] = {}
    stack: list[tuple[AstNode, tuple[_Scope, ...]]] = [(block.node, (_scope_names(block.node),))]
    while stack:
        node, chain = stack.pop()
        if node.kind in MATCHER_KINDS:
            raise _refuse(f"* or COLUMNS() over system.{tables[0]} (it holds host paths); name the columns")
        if node.kind == "Identifier":
            _check_identifier(node.label, tables, qualified, heads, chain)
        for child in node.children:
            inner = chain
            if child.kind == "SelectQuery":
                inner = (*chain, scopes.setdefault(id(child), _scope_names(child)))
            stack.append((child, inner))


def _check_identifier(
    name: str,
    tables: list[str],
    qualified: Mapping[tuple[str, ...], set[str]],
    heads: Mapping[str, set[str] | None],
    chain: tuple[_Scope, ...],
) -> None:
    parts = tuple(name.split("."))
    head = parts[0]
    is_resolved = False
    for table in tables:  # read as a column of the table (virtual columns start with _)
        columns = heads[table]
        if columns is None or head in columns or head.startswith("_"):
            _check_column(name, head, table)
            is_resolved = True
    prefixes = [parts[:length] for length in range(1, len(parts))]
    for prefix in prefixes:  # read as a column qualified by the table
        for table in qualified.get(prefix, ()):
            _check_column(name, parts[len(prefix)], table)
    for aliases, qualifiers in chain:
        if head in aliases or any(prefix in qualifiers for prefix in prefixes):
            is_resolved = True
    if not is_resolved:
        raise _refuse(f"Column {name} of system.{tables[0]} (not a column, table or alias of its query)")


def _check_column(name: str, column: str, table: str) -> None:
    allowed = SYSTEM_TABLE_COLUMNS[table]
    if column not in allowed:
        raise _refuse(f"Column {name} of system.{table} (allowed: {', '.join(sorted(allowed))})")
