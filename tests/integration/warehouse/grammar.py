"""A seeded generator of ClickHouse statements from the engine's own catalog, for fuzzing the read-only policy.

Nothing here is a fixed corpus: the functions, their aggregate combinators, the table functions,
the output formats and the keywords are read from the running engine (``system.functions``,
``system.aggregate_function_combinators``, ``system.table_functions``, ``system.formats``,
``system.keywords``), and the statements are built from productions, one for each node kind of
``EXPLAIN AST`` a read can contain (:data:`PRODUCED_KINDS`) and for the statements around them.
Every statement aims at a canary file (``{path}``) or at a file in the warehouse's data
directory (``{out}``): what the policy lets through must never read the one or write the other.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# The node kinds (ClickHouse parser classes' getID) the productions below write.
PRODUCED_KINDS = frozenset(
    {
        "SelectWithUnionQuery",
        "SelectIntersectExceptQuery",
        "SelectQuery",
        "ExpressionList",
        "Function",
        "Identifier",
        "Literal",
        "Asterisk",
        "QualifiedAsterisk",
        "ColumnsRegexpMatcher",
        "ColumnsListMatcher",
        "ColumnsTransformerList",
        "ColumnsApplyTransformer",
        "ColumnsExceptTransformer",
        "ColumnsReplaceTransformer",
        "TablesInSelectQuery",
        "TablesInSelectQueryElement",
        "TableExpression",
        "TableIdentifier",
        "TableJoin",
        "ArrayJoin",
        "Subquery",
        "WithElement",
        "OrderByElement",
        "WindowDefinition",
        "Set",
        "ShowTables",
        "ShowColumns",
        "ShowCreateTableQuery",
        "ExistsTableQuery",
        "ExistsDatabaseQuery",
        "DescribeQuery",
        "Explain",
    }
)


@dataclass(frozen=True)
class EngineCatalog:
    """What the engine says it offers, read at run time."""

    functions: tuple[str, ...]
    aggregates: tuple[str, ...]
    refused_functions: tuple[str, ...]  # outside the policy's categories: the interesting ones to call
    reaching_functions: tuple[str, ...]  # of those, the ones whose documentation speaks of files, paths, hosts
    file_functions: tuple[str, ...]  # of those, the ones whose documentation speaks of files
    combinators: tuple[str, ...]
    table_functions: tuple[str, ...]
    formats: tuple[str, ...]
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class Query:
    """One generated request: its SQL and the query parameters it needs."""

    sql: str
    params: dict[str, str]


class Grammar:
    """Builds random statements from ``catalog`` with a seeded ``random.Random``."""

    def __init__(self, catalog: EngineCatalog, rng: random.Random, path: str, out: Callable[[], str]) -> None:
        """Aim reads at ``path`` and out-files at ``out()`` (a fresh name in the data directory each time)."""
        self.catalog = catalog
        self.rng = rng
        self.path = path
        self.out = out
        self.params: dict[str, str] = {}

    # --- leaves -----------------------------------------------------------------------------
    def _path_literal(self) -> str:
        choice = self.rng.random()
        if choice < 0.15:
            self.params["p"] = self.path
            return "{p:String}"
        if choice < 0.25:
            return f"unhex('{self.path.encode().hex()}')"
        return "'" + self.path.replace("'", "\\'") + "'"

    def literal(self) -> str:
        return self.rng.choice(
            [
                self._path_literal,
                lambda: str(self.rng.randint(0, 3)),
                lambda: "'LineAsString'",
                lambda: "NULL",
                lambda: "[1, 2]",
                lambda: "(1, 'a')",
                lambda: "0.5",
                lambda: "'x String'",
            ]
        )()

    def function_name(self, reaching: float = 0.3) -> str:
        draw = self.rng.random()
        if draw < reaching * 0.8 and self.catalog.file_functions:
            return self.rng.choice(self.catalog.file_functions)
        if draw < reaching and self.catalog.reaching_functions:
            return self.rng.choice(self.catalog.reaching_functions)
        pool = self.catalog.refused_functions if draw < reaching + 0.2 else self.catalog.functions
        return self.rng.choice(pool)

    # --- expressions (Function, Identifier, Literal, lambda, subqueries, windows) ----------
    def expr(self, depth: int = 2) -> str:
        if depth <= 0:
            return self.rng.choice([self.literal, lambda: "p", lambda: "q"])()
        productions: list[Callable[[], str]] = [
            self.literal,
            lambda: "p",
            lambda: self.call(depth),
            lambda: self.call(depth),
            lambda: self.aggregate(depth),
            lambda: f"arrayMap(x -> {self.rng.choice(self.catalog.functions)}(x), [{self._path_literal()}])",
            lambda: (
                f"({self.expr(depth - 1)} {self.rng.choice(['+', '=', '<', 'AND', 'OR', '||', 'LIKE'])} "
                f"{self.expr(depth - 1)})"
            ),
            lambda: f"CASE WHEN {self.expr(depth - 1)} THEN {self.expr(depth - 1)} ELSE {self.literal()} END",
            lambda: f"CAST({self.expr(depth - 1)} AS String)",
            lambda: f"{self.expr(depth - 1)}::String",
            lambda: f"({self.select(depth - 1)})",
            lambda: f"{self.expr(depth - 1)} IN ({self.select(depth - 1)})",
            lambda: f"exists({self.select(depth - 1)})",
            lambda: f"{self.aggregate(depth)} OVER (ORDER BY p)",
        ]
        return self.rng.choice(productions)()

    def call(self, depth: int) -> str:
        arguments = ", ".join(self.expr(depth - 1) for _ in range(self.rng.randint(0, 3)))
        return f"{self.function_name()}({arguments})"

    def aggregate(self, depth: int) -> str:
        name = self.rng.choice(self.catalog.aggregates)
        if self.rng.random() < 0.3 and self.catalog.combinators:
            name += self.rng.choice(self.catalog.combinators)
        parameters = f"({self.literal()})" if self.rng.random() < 0.15 else ""
        return f"{name}{parameters}({self.expr(depth - 1)})"

    # --- column lists (Asterisk, matchers, APPLY / EXCEPT / REPLACE transformers) ------------
    def column(self, depth: int) -> str:
        transformer = self.rng.choice(
            [
                lambda: f"APPLY({self.function_name(0.5)})",
                lambda: f"APPLY {self.function_name(0.5)}",
                lambda: f"APPLY(x -> {self.function_name(0.5)}(x))",
                lambda: f"REPLACE({self.call(depth)} AS p)",
                lambda: "EXCEPT(q)",
            ]
        )
        return self.rng.choice(
            [
                lambda: self.expr(depth),
                lambda: f"{self.expr(depth)} AS a{self.rng.randint(0, 9)}",
                lambda: "*",
                lambda: f"* {transformer()}",
                lambda: f"s.* {transformer()}",
                lambda: f"COLUMNS('p') {transformer()}",
                lambda: f"COLUMNS(p, q) {transformer()}",
                lambda: f"* {transformer()} {transformer()}",
            ]
        )()

    # --- sources (TableExpression, table functions, subqueries, joins) -----------------------
    def source(self, depth: int) -> str:
        path = self._path_literal()
        table_function = self.rng.choice(self.catalog.table_functions)
        arguments = self.rng.choice([path, f"{path}, 'LineAsString'", f"{path}, 'CSV', 'x String'", "3", ""])
        return self.rng.choice(
            [
                lambda: f"(SELECT {path} AS p, 1 AS q) AS s",
                lambda: f"(SELECT {path} AS p) AS s",
                lambda: f"{table_function}({arguments}) AS s",
                lambda: "numbers(3) AS s",
                lambda: f"(SELECT {path} AS p, 1 AS q) AS s ARRAY JOIN [1] AS r",
                lambda: f"(SELECT {path} AS p, 1 AS q) AS s JOIN {table_function}({arguments}) AS t ON 1 = 1",
                lambda: self.rng.choice(["system.one", "system.tables", "system.databases", "system.parts"]) + " AS s",
            ]
        )()

    # --- payloads: one call aimed at the canary, in an otherwise well-formed statement ----------
    def payload_column(self) -> str:
        """A column that reads ``path`` if the policy lets its function through (the source has one column p)."""
        name = self.function_name(0.6)
        return self.rng.choice(
            [
                lambda: f"{name}(p)",
                lambda: f"{name}(p, 'LineAsString')",
                lambda: f"arrayMap(x -> {name}(x), [p])",
                lambda: f"* APPLY({name})",
                lambda: f"* APPLY {name}",
                lambda: f"* APPLY(x -> {name}(x))",
                lambda: f"COLUMNS('p') APPLY({name})",
                lambda: f"s.* APPLY({name})",
                lambda: f"* APPLY(toString) APPLY({name})",
                lambda: f"* REPLACE({name}(p) AS p)",
                lambda: f"{self.aggregate(1)}, {name}(p)",
                lambda: f"{self.column(1)}, {name}(p)",
            ]
        )()

    def payload_select(self) -> str:
        """A SELECT around one payload, in one of the shapes a read can take."""
        inner = f"SELECT {self.payload_column()} FROM (SELECT {self._path_literal()} AS p) AS s"
        table_function = self.rng.choice(self.catalog.table_functions)
        return self.rng.choice(
            [
                lambda: inner,
                lambda: f"SELECT * FROM ({inner})",
                lambda: f"WITH t AS ({inner}) SELECT * FROM t",
                lambda: f"{inner} UNION ALL {inner}",
                lambda: f"SELECT * FROM view({inner})",
                lambda: f"SELECT 1 WHERE 'x' IN ({inner})",
                lambda: f"SELECT ({inner} LIMIT 1)",
                lambda: f"{inner} ORDER BY 1 LIMIT 3",
                lambda: f"SELECT * FROM {table_function}({self._path_literal()}, 'LineAsString')",
                lambda: f"SELECT * FROM {table_function}({self._path_literal()})",
            ]
        )()

    # --- statements ---------------------------------------------------------------------------
    def select(self, depth: int = 2) -> str:
        columns = ", ".join(self.column(depth) for _ in range(self.rng.randint(1, 3)))
        sql = f"SELECT {columns} FROM {self.source(depth)}"
        if self.rng.random() < 0.3:
            sql += f" WHERE {self.expr(depth - 1)}"
        if self.rng.random() < 0.2:
            sql += " ORDER BY 1"
        if self.rng.random() < 0.2:
            sql = f"WITH {self.expr(depth - 1)} AS w SELECT * FROM ({sql})"
        return sql + " LIMIT 3"

    def out_file(self) -> str:
        mode = self.rng.choice(["", " TRUNCATE", " APPEND", " AND STDOUT"])
        return f" INTO OUTFILE '{self.out()}'{mode}"

    def statement(self) -> Query:
        """One statement, possibly with an out-file, a format, settings and a stray keyword."""
        self.params = {}
        tables = ["system.one", "s", "ticks"]
        if self.rng.random() < 0.5:  # half aim straight at the canary, in a statement that runs
            sql = self.payload_select()
            if self.rng.random() < 0.1:
                sql += self.out_file()
            return Query(sql, dict(self.params))
        sql = self.rng.choice(
            [
                lambda: f"DESCRIBE ({self.payload_select()})",
                lambda: f"EXPLAIN SYNTAX {self.payload_select()}",
                self.select,
                lambda: f"{self.select(1)} UNION ALL {self.select(1)}",
                lambda: f"{self.select(1)} EXCEPT {self.select(1)}",
                lambda: f"DESCRIBE ({self.select(1)})",
                lambda: f"DESCRIBE TABLE {self.source(1).removesuffix(' AS s')}",
                lambda: "SHOW TABLES",
                lambda: "SHOW DATABASES",
                lambda: f"SHOW COLUMNS FROM {self.rng.choice(tables)}",
                lambda: f"SHOW CREATE TABLE {self.rng.choice(tables)}",
                lambda: f"EXISTS {self.rng.choice(tables)}",
                lambda: "EXISTS DATABASE system",
                lambda: f"EXPLAIN {self.rng.choice(['', 'AST ', 'SYNTAX ', 'PLAN ', 'QUERY TREE '])}{self.select(1)}",
            ]
        )()
        if self.rng.random() < 0.3:
            sql += self.out_file()
        if self.rng.random() < 0.15:
            sql += f" FORMAT {self.rng.choice(self.catalog.formats)}"
        if self.rng.random() < 0.05:
            sql += " SETTINGS readonly = 0"
        if self.rng.random() < 0.05:
            words = sql.split(" ")
            words.insert(self.rng.randrange(len(words) + 1), self.rng.choice(self.catalog.keywords))
            sql = " ".join(words)
        return Query(sql, dict(self.params))
