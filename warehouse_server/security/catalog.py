"""The engine's function catalog (``system.functions``) as the read-only policy sees it.

A name resolves as the engine resolves it: exactly as written, or, for a function the
engine registered as case-insensitive (``system.functions.case_insensitive``: ``IF``, ``SUM``,
``CAST``), in any case; ``TOIPV4`` is unknown to the engine, so unknown here, so refused.

A function is allowed to a read-only user when it resolves (through ``alias_to`` and the
aggregate combinators: ``AIGenerate`` -> ``aiGenerate``, ``sumIf`` -> ``sum``) to a
built-in function whose category is on :data:`~warehouse_server.security.allowlist.ALLOWED_CATEGORIES`
or that is named on the short lists beside it, **and** whose name is in the reviewed
snapshot ``allowed_functions.txt``. The snapshot is what a person has read: when a new
ClickHouse adds a function to an allowed category, the unit test comparing the snapshot
with the engine's catalog fails, and the function stays refused until the snapshot is
regenerated (``python -m warehouse_server.security.catalog > warehouse_server/security/allowed_functions.txt``)
and the change reviewed.

An unknown name never costs more than a dictionary lookup on the request path: the catalog
is read again (a function may have been created since) at most once per
``min_reload_interval_s``, by one thread while the others decide on the catalog they have,
and a name found unknown is remembered until the next reload.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from warehouse_server.security.allowlist import (
    ALLOWED_CATEGORIES,
    ALLOWED_FUNCTIONS,
    PARSER_AGGREGATES,
    PARSER_FUNCTIONS,
    REFUSED_ON_REVIEW,
    SYSTEM_TABLE_COLUMNS,
)

SNAPSHOT = Path(__file__).with_name("allowed_functions.txt")
MIN_RELOAD_INTERVAL_S = 60.0
MAX_UNKNOWN_NAMES = 4096
BUILT_IN = "System"


@dataclass(frozen=True)
class FunctionInfo:
    """What ``system.functions`` says of a function (``alias_to``: its canonical name, if an alias)."""

    category: str
    origin: str
    is_aggregate: bool
    alias_to: str = ""
    is_case_insensitive: bool = False


Loader = Callable[[], tuple[dict[str, FunctionInfo], list[str]]]


class FunctionCatalog:
    """The engine's functions and aggregate combinators, read again at a bounded rate on unknown names."""

    def __init__(
        self,
        load: Loader,
        min_reload_interval_s: float = MIN_RELOAD_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Load the catalog now with ``load`` -> (functions by name, combinator suffixes)."""
        self._load = load
        self._clock = clock
        self.min_reload_interval_s = min_reload_interval_s
        self._lock = threading.Lock()
        self._is_reloading = False
        self._unknown: OrderedDict[str, None] = OrderedDict()
        self.reloads = 0
        self._set(*load())
        self._reloaded_at = clock()

    def _set(self, functions: dict[str, FunctionInfo], combinators: list[str]) -> None:
        functions = {**{name: FunctionInfo("", BUILT_IN, False) for name in PARSER_FUNCTIONS}, **functions}
        functions.update({name: FunctionInfo("Aggregate Functions", BUILT_IN, True) for name in PARSER_AGGREGATES})
        self._functions = functions
        # A name typed in another case resolves, as in the engine, only to a function registered as
        # case-insensitive, and only when every such function of that spelling is one function
        # (timezone, timeZone); an ambiguous spelling is unknown, so refused.
        spellings: dict[str, set[str]] = {}
        for name, info in functions.items():
            if info.is_case_insensitive:
                spellings.setdefault(name.lower(), set()).add(name)
        targets = {lower: {functions[name].alias_to or name for name in names} for lower, names in spellings.items()}
        self._lower = {lower: min(names) for lower, names in spellings.items() if len(targets[lower]) == 1}
        self._combinators = sorted(combinators, key=len, reverse=True)

    @property
    def functions(self) -> dict[str, FunctionInfo]:
        """Every function of the catalog by name (parser-only names included)."""
        return self._functions

    def lookup(self, name: str) -> FunctionInfo | None:
        """Return what ``name`` is, seeing through combinators (``sumIf`` -> ``sum``); None if unknown."""
        resolved = self.resolve(name)
        return None if resolved is None else resolved[1]

    def resolve(self, name: str) -> tuple[str, FunctionInfo] | None:
        """Return the canonical name and entry ``name`` resolves to (aliases, combinators), or None."""
        spelled = name if name in self._functions else self._lower.get(name.lower(), "")
        info = self._functions.get(spelled)
        if info is not None:
            canonical = info.alias_to or spelled  # the catalog's name, never the spelling typed
            target = self._functions.get(info.alias_to) if info.alias_to else info
            return None if target is None else (canonical, target)
        for suffix in self._combinators:
            if name.endswith(suffix) and len(name) > len(suffix):
                base = self.resolve(name[: -len(suffix)])
                if base is not None and base[1].is_aggregate:
                    return base
        return None

    def find(self, name: str) -> tuple[str, FunctionInfo] | None:
        """Resolve ``name``; if unknown, read the catalog again when due (never waiting for another reader)."""
        resolved = self.resolve(name)
        if resolved is not None:
            return resolved
        with self._lock:
            is_due = self._clock() - self._reloaded_at >= self.min_reload_interval_s
            if name in self._unknown or self._is_reloading or not is_due:
                self._remember_unknown(name)
                return None
            self._is_reloading = True
        try:
            loaded = self._load()
        finally:
            with self._lock:
                self._is_reloading = False
                self._reloaded_at = self._clock()
        with self._lock:
            self._set(*loaded)
            self._unknown.clear()
            self.reloads += 1
        resolved = self.resolve(name)
        if resolved is None:
            with self._lock:
                self._remember_unknown(name)
        return resolved

    def _remember_unknown(self, name: str) -> None:
        self._unknown[name] = None
        self._unknown.move_to_end(name)
        if len(self._unknown) > MAX_UNKNOWN_NAMES:
            self._unknown.popitem(last=False)


def is_allowed_kind(canonical: str, info: FunctionInfo) -> bool:
    """Return True when a built-in function of this name and entry only computes (by category or by name)."""
    if info.origin != BUILT_IN or canonical in REFUSED_ON_REVIEW:
        return False  # user-defined (its body is not checked here), or refused by a review
    return info.category in ALLOWED_CATEGORIES or canonical in ALLOWED_FUNCTIONS or canonical in PARSER_FUNCTIONS


def allowed_names(functions: dict[str, FunctionInfo]) -> list[str]:
    """Every name (canonical or alias) of ``functions`` that resolves to an allowed function, sorted."""
    names = []
    for name, info in functions.items():
        target = functions.get(info.alias_to) if info.alias_to else info
        if target is not None and is_allowed_kind(info.alias_to or name, target):
            names.append(name)
    return sorted(names)


@cache
def reviewed_functions(path: Path = SNAPSHOT) -> frozenset[str]:
    """The reviewed snapshot of allowed function names (one a line; ``#`` starts a comment)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return frozenset(line for line in lines if line)


class DatabaseCatalog:
    """The engine's databases and their engines, read again on an unknown name (at most once a second).

    Tables a read-only user names are allowed only in databases of a storage engine: a database
    the service created after the last read is found by reading again, an unknown one is refused.
    After the service user's DDL the next unknown name reads them at once (:meth:`invalidate`):
    a database created a moment after the last read is found too.
    """

    def __init__(
        self,
        load: Callable[[], dict[str, str]],
        min_reload_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Read the databases now with ``load`` -> {name: engine}."""
        self._load = load
        self._clock = clock
        self.min_reload_interval_s = min_reload_interval_s
        self._lock = threading.Lock()
        self._engines = load()
        self._reloaded_at = clock()
        self._is_stale = False

    def invalidate(self) -> None:
        """Note that the databases may have changed (the service user ran DDL): the next unknown name reads them."""
        self._is_stale = True

    def engine(self, name: str) -> str | None:
        """Return the engine of database ``name`` (None if there is no such database)."""
        engine = self._engines.get(name)
        if engine is not None:
            return engine
        with self._lock:
            if self._is_stale or self._clock() - self._reloaded_at >= self.min_reload_interval_s:
                self._is_stale = False
                self._engines = self._load()
                self._reloaded_at = self._clock()
        return self._engines.get(name)


def read_databases(run: Callable[[str], bytes]) -> dict[str, str]:
    """Read ``system.databases`` with ``run`` (SQL -> TabSeparated bytes): {name: engine}."""
    rows = run("SELECT name, engine FROM system.databases").decode("utf-8", "replace").splitlines()
    return dict(line.split("\t", 1) for line in rows if "\t" in line)


def read_system_columns(run: Callable[[str], bytes]) -> dict[str, frozenset[str]]:
    """Read every column of the system tables holding host paths with ``run``: {table: column names}."""
    columns: dict[str, set[str]] = {table: set() for table in SYSTEM_TABLE_COLUMNS}
    rows = run("SELECT table, name FROM system.columns WHERE database = 'system'")
    for line in rows.decode("utf-8", "replace").splitlines():
        table, _, name = line.partition("\t")
        if table in columns:
            columns[table].add(name)
    return {table: frozenset(names) for table, names in columns.items()}


def read_catalog(run: Callable[[str], bytes]) -> tuple[dict[str, FunctionInfo], list[str]]:
    """Read ``system.functions`` and the aggregate combinators with ``run`` (SQL -> TabSeparated bytes)."""
    functions: dict[str, FunctionInfo] = {}
    rows = run("SELECT name, categories, origin, is_aggregate, alias_to, case_insensitive FROM system.functions")
    for line in rows.decode("utf-8", "replace").splitlines():
        name, category, origin, is_aggregate, alias_to, case_insensitive = line.split("\t")
        functions[name] = FunctionInfo(category, origin, is_aggregate == "1", alias_to, case_insensitive == "1")
    combinators = run("SELECT name FROM system.aggregate_function_combinators").decode().split()
    return functions, combinators


def snapshot_text(names: Iterable[str]) -> str:
    """The snapshot file's text for ``names``."""
    header = (
        "# Functions a read-only user may call: the engine's catalog filtered by the policy's categories and\n"
        "# lists (warehouse_server/security/allowlist.py), reviewed. Regenerate with\n"
        "#   python -m warehouse_server.security.catalog > warehouse_server/security/allowed_functions.txt\n"
        "# and review the difference before committing it.\n"
    )
    return header + "".join(f"{name}\n" for name in names)


def main() -> None:
    """Print the snapshot of the installed engine's allowed functions."""
    import chdb

    connection = chdb.connect(":memory:")
    try:
        functions, _ = read_catalog(lambda sql: connection.query(sql, "TabSeparated").bytes())
    finally:
        connection.close()
    print(snapshot_text(allowed_names(functions)), end="")


if __name__ == "__main__":
    main()
