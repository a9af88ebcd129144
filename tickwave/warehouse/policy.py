"""The read-only policy, decided on the engine's own parse tree (``EXPLAIN AST``), never on text.

Every read-only request (the analyst, or a GET) is parsed by ClickHouse itself: the
statement count comes from chdb's ``classify_query`` and the tree from ``EXPLAIN AST``
on the request's own handle, with its query parameters substituted. The rules then run
on that tree:

- one statement, and a read: SELECT / WITH / UNION / INTERSECT / EXCEPT, SHOW (tables,
  databases, columns, create), DESCRIBE, EXISTS, EXPLAIN of one of those, or USE (and
  SET for a GET of the service user, whose ``readonly=2`` allows settings);
- no ``INTO OUTFILE`` (a literal child of a query node) and, for the analyst, no
  ``SETTINGS`` clause (a ``Set`` node);
- every table function on :data:`ALLOWED_TABLE_FUNCTIONS` (closed by default: whatever a
  later ClickHouse adds stays refused);
- no function that reaches outside the database, by name or family
  (:data:`OUTSIDE_NAMES`, :data:`OUTSIDE_PREFIXES`) or by what ``system.functions`` says of
  it (its category is Introspection, AI, Dictionary or Embedded Dictionary, or it is
  user-defined, so its body is not checked here);
- for the analyst: system tables only from :data:`ALLOWED_SYSTEM_TABLES` (metadata BI
  tools read), and neither ``USE system`` nor ``database=system``;
- output formats that read schema or template files of the host are refused.

The dump of ``EXPLAIN AST`` is an indented tree whose lines carry ``(children N)``: it is
parsed by indentation and every count is checked, so a name with a line break in it
(which the dump prints raw) can only add lines, never hide one; a tree that does not
add up is refused. Verdicts are cached by the exact text and parameters (the tree is a
function of them), so a dashboard's repeated query costs a dictionary lookup.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from tickwave.warehouse.protocol import READONLY, QueryError

ALLOWED_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "values", "generateseries", "generate_series", "primes",
    "generaterandom", "null", "view", "format",
})  # fmt: skip
# Host files, the network, other servers, programs, objects of the server process.
OUTSIDE_NAMES = frozenset({
    "file", "filecluster", "url", "urlcluster", "executable", "executablepool", "python", "jdbc", "odbc",
    "sqlite", "redis", "gcs", "oss", "cosn", "hive", "arrowflight", "ytsaurus", "zookeeper", "input",
    "filesystem", "bigquery", "catboostevaluate", "getserversetting", "filesystemavailable",
    "filesystemcapacity", "filesystemunreserved", "getmacro", "dictionary", "merge", "loop", "eval",
})  # fmt: skip
OUTSIDE_PREFIXES = (
    "s3", "hdfs", "azure", "iceberg", "deltalake", "hudi", "paimon", "remote", "cluster", "mysql",
    "postgresql", "mongodb", "prometheus", "dictget", "dicthas", "dictisin", "timeseries", "mergetree",
)  # fmt: skip
OUTSIDE_CATEGORIES = frozenset({"Introspection", "AI", "Dictionary", "Embedded Dictionary"})
ALLOWED_SYSTEM_TABLES = frozenset({
    "one", "numbers", "numbers_mt", "zeros", "zeros_mt", "databases", "tables", "columns", "functions",
    "table_functions", "formats", "data_type_families", "time_zones", "parts", "parts_columns",
    "aggregate_function_combinators", "table_engines", "settings", "collations", "keywords", "build_options",
})  # fmt: skip
# Formats that read a schema or template file of the host.
FILE_FORMATS = frozenset({
    "protobuf", "protobufsingle", "protobuflist", "capnproto", "template", "templateignorespaces", "regexp",
})  # fmt: skip
READ_ROOTS = frozenset({
    "SelectWithUnionQuery", "SelectIntersectExceptQuery", "SelectQuery", "ShowTables", "ShowColumns",
    "ShowCreateTableQuery", "ShowCreateDatabaseQuery", "ShowCreateViewQuery", "ShowCreateDictionaryQuery",
    "ExistsTableQuery", "ExistsDatabaseQuery", "ExistsViewQuery", "DescribeQuery", "Explain", "UseQuery",
})  # fmt: skip
QUERY_NODES = frozenset({"SelectWithUnionQuery", "SelectIntersectExceptQuery", "Explain"})
SYSTEM_DATABASE = "system"
_CHILDREN = re.compile(r" \(children (\d+)\)$")
_ALIAS = re.compile(r" \(alias [^\n]*\)$")
CACHE_SIZE = 4096


@dataclass
class AstNode:
    """One node of the engine's parse tree: its kind (``Function``, ``Literal``...), label and children."""

    kind: str
    label: str
    declared: int
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


def _refuse(message: str) -> QueryError:
    return QueryError(READONLY, f"{message}; not allowed in readonly mode")


def parse_ast(dump: str) -> AstNode:
    """Parse the text of ``EXPLAIN AST`` into a tree, checking every ``(children N)``.

    Raises:
        QueryError: READONLY when the dump is not one consistent tree.
    """
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
        label = _ALIAS.sub("", label.strip())
        while stack[-1][0] >= indent:
            stack.pop()
        if stack[-1][0] != indent - 1 and stack[-1][1] is not root:
            raise _refuse("The statement's parse tree could not be verified")
        parent = stack[-1][1]
        node = AstNode(kind, label, declared, parent=parent)
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
class FunctionInfo:
    """What ``system.functions`` says of a function."""

    category: str
    origin: str
    is_aggregate: bool


class FunctionCatalog:
    """The engine's functions (``system.functions``) and aggregate combinators, reloaded on unknown names."""

    def __init__(self, load: Callable[[], tuple[dict[str, FunctionInfo], list[str]]]) -> None:
        """Load the catalog now with ``load`` -> (functions by name, combinator suffixes)."""
        self._load = load
        self._lock = threading.Lock()
        self.reloads = 0
        self._set(*load())

    def _set(self, functions: dict[str, FunctionInfo], combinators: list[str]) -> None:
        self._functions = functions
        self._lower = {name.lower(): info for name, info in functions.items()}
        self._combinators = sorted(combinators, key=len, reverse=True)

    def reload(self) -> None:
        """Read the catalog again (a user-defined function may have been created since)."""
        with self._lock:
            self._set(*self._load())
            self.reloads += 1

    def lookup(self, name: str) -> FunctionInfo | None:
        """Return the function ``name`` resolves to, seeing through combinators (``sumIf`` -> ``sum``)."""
        info = self._functions.get(name) or self._lower.get(name.lower())
        if info is not None or name == "lambda":
            return info or FunctionInfo("", "System", False)
        for suffix in self._combinators:
            if name.endswith(suffix) and len(name) > len(suffix):
                base = self.lookup(name[: -len(suffix)])
                if base is not None and base.is_aggregate:
                    return base
        return None


def read_catalog(run: Callable[[str], bytes]) -> tuple[dict[str, FunctionInfo], list[str]]:
    """Read ``system.functions`` and the aggregate combinators with ``run`` (SQL -> TabSeparated bytes)."""
    functions: dict[str, FunctionInfo] = {}
    rows = run("SELECT name, categories, origin, is_aggregate FROM system.functions")
    for line in rows.decode("utf-8", "replace").splitlines():
        name, category, origin, is_aggregate = line.split("\t")
        functions[name] = FunctionInfo(category, origin, is_aggregate == "1")
    combinators = run("SELECT name FROM system.aggregate_function_combinators").decode().split()
    return functions, combinators


def reaches_outside(name: str, info: FunctionInfo | None) -> bool:
    """Return True when calling ``name`` may read or write outside the database."""
    lowered = name.lower()
    if lowered in OUTSIDE_NAMES or lowered.startswith(OUTSIDE_PREFIXES):
        return True
    return info is not None and (info.category in OUTSIDE_CATEGORIES or info.origin != "System")


@dataclass(frozen=True)
class Request:
    """What the policy looks at besides the tree: who asks, where, in which format."""

    is_analyst: bool
    database: str
    output_format: str


class ReadOnlyPolicy:
    """Decides whether a read-only request may run, from the engine's parse tree."""

    def __init__(self, catalog: FunctionCatalog, cache_size: int = CACHE_SIZE) -> None:
        """Check functions against ``catalog``; remember up to ``cache_size`` verdicts."""
        self.catalog = catalog
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
        root = statement.children[0] if statement.kind == "Explain" and statement.children else statement
        if statement.kind == "Set" and not request.is_analyst:
            return
        if statement.kind not in READ_ROOTS or root.kind not in READ_ROOTS:
            raise QueryError(READONLY, "Cannot execute query in readonly mode")
        if request.output_format.lower() in FILE_FORMATS:
            raise _refuse(f"Format {request.output_format} reads schema files of the host")
        if request.is_analyst and request.database == SYSTEM_DATABASE:
            raise _refuse(f"Database {request.database} as the current database")
        if statement.kind == "UseQuery" and request.is_analyst and statement.name == SYSTEM_DATABASE:
            raise _refuse(f"USE {statement.name}")
        for node in statement.walk():
            self._check_node(node, request)

    def _check_node(self, node: AstNode, request: Request) -> None:
        if node.kind in QUERY_NODES:
            for child in node.children:
                if child.kind == "Literal":
                    raise _refuse("INTO OUTFILE")
                if child.kind == "Identifier" and child.name.lower() in FILE_FORMATS:
                    raise _refuse(f"Format {child.name} reads schema files of the host")
        if node.kind == "Set" and request.is_analyst:
            raise _refuse("Changing settings (a SETTINGS clause)")
        if node.kind == "Function":
            self._check_function(node)
        if request.is_analyst and node.kind in ("TableIdentifier", "Identifier"):
            _check_system_table(node.name)

    def _check_function(self, node: AstNode) -> None:
        name = node.name
        is_table_function = node.parent is not None and node.parent.kind == "TableExpression"
        if is_table_function and name.lower() not in ALLOWED_TABLE_FUNCTIONS:
            raise _refuse(f"Table function {name}")
        info = self.catalog.lookup(name)
        if info is None and not is_table_function:
            self.catalog.reload()  # perhaps a function created since: decide on the current catalog
            info = self.catalog.lookup(name)
        if reaches_outside(name, info):
            raise _refuse(f"Function {name} reaches outside the warehouse")


def _check_system_table(name: str) -> None:
    database, dot, table = name.partition(".")
    if dot and database == SYSTEM_DATABASE and table.split(".")[0] not in ALLOWED_SYSTEM_TABLES:
        raise _refuse(f"Table system.{table}")
