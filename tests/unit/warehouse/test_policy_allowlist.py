"""The read-only policy's allow-lists on the engine's own parse trees (chdb in process, nothing served).

Every tree here comes from the installed engine's ``EXPLAIN AST``, so the tests follow the
parser when ClickHouse changes it; the function catalog is the engine's ``system.functions``
and the reviewed snapshot beside the policy.
"""

from __future__ import annotations

import gc
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import chdb
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from dashboards.alerts import alert_rules
from dashboards.build import boards
from dashboards.gocheck import board_context
from dashboards.macros import expand
from tests.jdbc_metadata_sql import metadata_queries
from tickwave.config import Settings
from warehouse_server.protocol import READONLY, QueryError
from warehouse_server.security.allowlist import (
    ALLOWED_CATEGORIES,
    ALLOWED_NODE_KINDS,
    LITERAL_PARENTS,
    OUTPUT_FORMATS,
    REFUSED_OUTPUT_FORMATS,
)
from warehouse_server.security.catalog import (
    SNAPSHOT,
    DatabaseCatalog,
    FunctionCatalog,
    FunctionInfo,
    allowed_names,
    read_catalog,
    read_system_columns,
    reviewed_functions,
)
from warehouse_server.security.policy import ReadOnlyPolicy, Request

REPO = Path(__file__).resolve().parents[3]
ANALYST = Request(is_analyst=True, database="tickwave", output_format="TabSeparated")
SERVICE_GET = Request(is_analyst=False, database="tickwave", output_format="TabSeparated")
DATA_FILE = "/state/data/warehouse/chdb/metadata/tickwave.sql"
DATABASES = DatabaseCatalog(lambda: {"tickwave": "Atomic", "default": "Overlay", "system": "Memory"})


@pytest.fixture(scope="module")
def connection() -> Iterator[Any]:
    connection = chdb.connect(":memory:")
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def catalog(connection: Any) -> FunctionCatalog:
    return FunctionCatalog(lambda: read_catalog(lambda sql: connection.query(sql, "TabSeparated").bytes()))


def _policy(connection: Any, catalog: FunctionCatalog, reviewed: frozenset[str] | None = None) -> ReadOnlyPolicy:
    """The policy as the server builds it: the engine's catalog and its system tables' columns."""
    columns = read_system_columns(lambda sql: connection.query(sql, "TabSeparated").bytes())
    return ReadOnlyPolicy(catalog, DATABASES, reviewed=reviewed, system_columns=columns)


def decide(connection: Any, catalog: FunctionCatalog, sql: str, request: Request = ANALYST, **params: str) -> None:
    """Run the policy on ``sql`` as the server does (a fresh verdict cache each time)."""

    def explain(text: str) -> str:
        try:
            return str(connection.query("EXPLAIN AST " + text, "TabSeparatedRaw", params=params).bytes().decode())
        except RuntimeError as exc:  # the engine's own refusal (a syntax error, an unknown parameter)
            code = re.search(r"Code: (\d+)", str(exc))
            raise QueryError(int(code.group(1)) if code else 0, str(exc)) from exc

    _policy(connection, catalog).check(sql, params, request, explain)


ESCAPES = [
    # functions the dump does not name: APPLY prints a bare ColumnsApplyTransformer
    "SELECT * APPLY(file) FROM (SELECT '/etc/hostname' AS p)",
    "SELECT * APPLY file FROM (SELECT '/etc/hostname' AS p)",
    "SELECT * APPLY(x -> file(x)) FROM (SELECT '/etc/hostname' AS p)",
    "SELECT COLUMNS('p') APPLY(file) FROM (SELECT '/etc/hostname' AS p)",
    "SELECT s.* APPLY(file) FROM (SELECT '/etc/hostname' AS p) AS s",
    "SELECT * EXCEPT(q) APPLY(file) FROM (SELECT '/etc/hostname' AS p, 1 AS q)",
    "SELECT * APPLY(toString) APPLY(file) FROM (SELECT '/etc/hostname' AS p)",
    "SELECT * REPLACE(file(p) AS p) FROM (SELECT '/etc/hostname' AS p)",
    "SELECT * FROM (SELECT * APPLY(file) FROM (SELECT '/etc/hostname' AS p))",
    "SELECT 1 WHERE 'x' IN (SELECT * APPLY(file) FROM (SELECT '/etc/hostname' AS p))",
    "DESCRIBE (SELECT * APPLY(file) FROM (SELECT '/etc/hostname' AS p))",
    "EXPLAIN SYNTAX SELECT * APPLY(file) FROM (SELECT '/etc/hostname' AS p)",
    # out-files after every statement that takes one, TRUNCATE and APPEND
    f"SELECT 1 INTO OUTFILE '{DATA_FILE}' TRUNCATE",
    f"DESCRIBE (SELECT 1 AS x) INTO OUTFILE '{DATA_FILE}' TRUNCATE FORMAT TSVRaw",
    f"DESCRIBE TABLE numbers(1) INTO OUTFILE '{DATA_FILE}' APPEND FORMAT TSVRaw",
    f"DESC (SELECT 'ATTACH TABLE x' AS `ATTACH`) INTO OUTFILE '{DATA_FILE}' APPEND",
    f"SHOW TABLES INTO OUTFILE '{DATA_FILE}' TRUNCATE",
    f"SHOW DATABASES INTO OUTFILE '{DATA_FILE}' APPEND",
    f"SHOW COLUMNS FROM ticks INTO OUTFILE '{DATA_FILE}' TRUNCATE",
    f"SHOW CREATE TABLE ticks INTO OUTFILE '{DATA_FILE}' APPEND",
    f"SHOW CREATE DATABASE tickwave INTO OUTFILE '{DATA_FILE}' TRUNCATE",
    f"EXISTS ticks INTO OUTFILE '{DATA_FILE}' TRUNCATE",
    f"EXISTS DATABASE tickwave INTO OUTFILE '{DATA_FILE}' APPEND",
    f"EXPLAIN SELECT 1 INTO OUTFILE '{DATA_FILE}' TRUNCATE",
    f"SELECT 1 INTO OUTFILE '{DATA_FILE}' AND STDOUT",
    f"SELECT 1 INTO OUTFILE '{DATA_FILE}' COMPRESSION 'gzip' LEVEL 3",
    # AI functions by name and by alias; functions outside the allowed categories
    "SELECT aiGenerate('hello')",
    "SELECT AIGenerate('hello')",
    "SELECT AIClassify('hello', ['a'])",
    "SELECT file('/etc/hostname')",
    "SELECT throwIf(1)",
    "SELECT getServerSetting('user_files_path')",
    "SELECT hostName()",
    "SELECT joinGet('t', 'v', 1)",
    "SELECT addressToLine(toUInt64(1))",
    "SELECT notAFunctionAnywhere(1)",
    # host paths in system tables
    "SELECT * FROM system.databases",
    "SELECT metadata_path FROM system.tables",
    "SELECT name FROM system.tables WHERE metadata_path LIKE '/home/%'",
    "SELECT t.data_paths FROM system.tables AS t",
    "SELECT COLUMNS('path') FROM system.parts",
    "SELECT x FROM (SELECT path AS x FROM system.parts)",
    "SELECT (SELECT max(data_path) FROM system.databases)",
    "SELECT 1 WHERE 'x' IN system.databases",
    # host paths through joins, qualifiers and aliases
    "SELECT d.data_path FROM system.tables AS t JOIN system.databases AS d ON t.database = d.name",
    "SELECT t.name, data_path FROM system.tables AS t JOIN system.databases AS d ON t.database = d.name",
    "SELECT system.databases.metadata_path FROM system.databases",
    "SELECT databases.metadata_path FROM system.databases",
    "SELECT `t.data_paths` FROM system.tables AS t",
    "SELECT t.data_paths.size0 FROM system.tables AS t",
    "SELECT data_paths.size0 FROM system.tables",
    "SELECT c FROM system.tables ARRAY JOIN data_paths AS c",
    "SELECT c.1 FROM system.tables ARRAY JOIN arrayZip(data_paths, data_paths) AS c",
    "SELECT _path FROM system.parts",
    "SELECT move_ttl_info.expression FROM system.parts",
    # an alias the block does not define resolves in an enclosing query (the WITH is seen in subqueries)
    "WITH data_path AS x SELECT (SELECT x FROM system.databases LIMIT 1)",
    "WITH data_path AS x SELECT * FROM (SELECT x FROM system.databases)",
    "WITH data_path AS x SELECT (SELECT x FROM system.databases WHERE 1 IN (SELECT 1 AS x))",
    "WITH data_path AS t SELECT (SELECT t FROM system.tables AS t)",
    # names the engine resolves only as written
    "SELECT TOIPV4('10.0.0.1')",
    "SELECT aigenerate('hello')",
    # output formats off the allow-list: schema and template files of the host, a schema registry
    "SELECT 1 FORMAT Protobuf",
    "SELECT 1 FORMAT template",
    "SELECT 1 FORMAT AvroConfluent",
    "DESCRIBE (SELECT 1) FORMAT ProtobufSingle",
    "EXPLAIN SELECT 1 FORMAT ProtobufList",
    "SHOW TABLES FROM tickwave FORMAT Protobuf",
    "SELECT 1 UNION ALL SELECT 2 FORMAT NotAFormatAnywhere",
]


@pytest.mark.parametrize("sql", ESCAPES)
def test_policy_when_an_escape_is_tried_then_refused(connection: Any, catalog: FunctionCatalog, sql: str) -> None:
    with pytest.raises(QueryError) as refused:
        decide(connection, catalog, sql)

    assert refused.value.code == READONLY


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT * APPLY({f:Identifier}) FROM (SELECT {p:String} AS p)", {"f": "file", "p": "/etc/hostname"}),
        ("SELECT {f:Identifier}({p:String})", {"f": "file", "p": "/etc/hostname"}),
        ("DESCRIBE (SELECT 1 AS x) INTO OUTFILE {p:String}", {"p": DATA_FILE}),
        ("SELECT * FROM {t:Identifier}", {"t": "system.processes"}),
    ],
)
def test_policy_when_the_escape_comes_in_query_parameters_then_refused(
    connection: Any, catalog: FunctionCatalog, sql: str, params: dict[str, str]
) -> None:
    try:
        decide(connection, catalog, sql, **params)
    except QueryError as refused:
        assert refused.code in (READONLY, 62, 456), refused  # refused, or the engine cannot parse it at all
    else:
        pytest.fail(f"allowed: {sql} with {params}")


def test_policy_when_the_service_user_reads_with_get_then_the_same_tree_rules_apply(
    connection: Any, catalog: FunctionCatalog
) -> None:
    decide(connection, catalog, "SELECT 1 SETTINGS max_threads = 1", SERVICE_GET)
    for sql in ("SELECT * APPLY(file) FROM (SELECT '/x' AS p)", f"SHOW TABLES INTO OUTFILE '{DATA_FILE}'"):
        with pytest.raises(QueryError):
            decide(connection, catalog, sql, SERVICE_GET)


def dbt_model_queries() -> list[str]:
    """Every dbt model's SELECT, rendered as a full build would (refs and sources to table names)."""
    import jinja2
    import yaml

    variables = yaml.safe_load((REPO / "dbt" / "dbt_project.yml").read_text())["vars"]
    environment = jinja2.Environment(extensions=["jinja2.ext.do"], autoescape=False)  # SQL, not HTML
    context: dict[str, Any] = {
        "ref": lambda *names: names[-1],
        "source": lambda _source, table: table,
        "config": lambda **_options: "",
        "var": lambda name, default=None: variables.get(name, default),
        "env_var": lambda _name, default="": default,
        "is_incremental": lambda: False,
        "this": SimpleNamespace(identifier="", schema=""),  # the model being rendered (the TTL macro asks)
        "return": lambda value: value,
        "execute": False,
    }
    for path in sorted((REPO / "dbt" / "macros").glob("*.sql")):
        macros = environment.from_string(path.read_text()).make_module(context)
        context.update({name: getattr(macros, name) for name in dir(macros) if not name.startswith("_")})
    models = sorted((REPO / "dbt" / "models").rglob("*.sql"))
    return [environment.from_string(model.read_text()).render(**context).strip() for model in models]


def analyst_queries() -> list[str]:
    """Every query the analyst is shown or runs: the READMEs, board panels, alert rules, dbt models' SELECTs."""
    queries = []
    for readme in (
        REPO / "README.md",
        REPO / "warehouse_server" / "README.md",
        *sorted((REPO / "docs").glob("**/*.md")),
    ):
        for block in re.findall(r"```sql\n(.*?)```", readme.read_text(), re.DOTALL):
            queries.extend(query.strip() for query in block.split(";") if query.strip())
    settings, now = Settings(), datetime(2026, 1, 5, 12, tzinfo=UTC)
    for board in boards(settings):
        queries.extend(expand(spec.sql, board_context(board.uid, now, "EURUSD")) for spec in board.queries)
    queries.extend(rule.sql for rule in alert_rules(settings) if rule.sql)  # the others are PromQL
    return queries + dbt_model_queries()


ALLOWED = [
    "SELECT sumIf(number, number > 1), count(DISTINCT number), avgState(number) FROM numbers(5)",
    "SELECT arrayMap(x -> x * 2, [1, 2]), arrayFold((acc, x) -> acc + x, [1, 2], 0)",
    "SELECT row_number() OVER w, lagInFrame(number) OVER w FROM numbers(3) WINDOW w AS (ORDER BY number)",
    "SELECT * EXCEPT(number) FROM (SELECT number, 1 AS one FROM numbers(2))",
    "SELECT COLUMNS('num') FROM numbers(2)",
    "SELECT CASE number WHEN 1 THEN 'a' ELSE 'b' END, number::String, toTypeName(number) FROM numbers(2)",
    "SELECT 1 WHERE exists(SELECT 1) AND 1 IN (SELECT 1)",
    "SELECT name, engine FROM system.databases ORDER BY name",
    "SELECT database, name, total_rows FROM system.tables WHERE database = currentDatabase()",
    "SELECT version(), timezone(), getSetting('readonly')",
    "SELECT displayName(), version(), revision(), timezone()",  # clickhouse-go's hello (Grafana's plugin)
    "SELECT name, value, readonly FROM system.settings LIMIT 10000",  # clickhouse-connect's
    "DESCRIBE TABLE system.tables",
    "SHOW TABLES",
    "EXISTS TABLE ticks",
    "EXPLAIN SYNTAX SELECT number FROM numbers(2)",
    "SELECT 1 FORMAT JSONEachRow",
    "SHOW TABLES FROM tickwave FORMAT PrettyCompact",
    "SHOW CREATE TABLE tickwave.ticks FORMAT TSVRaw",
    # names as ClickHouse reads them: case-insensitive functions, joins' and ARRAY JOIN's aliases, IP conversions
    "SELECT IF(number = 1, 'a', 'b'), If(1, 2, 3), SUM(number), SUMIf(number, number > 0) FROM numbers(2)",
    "SELECT toIPv4('10.0.0.1'), toIPv6('::1'), IPv4NumToString(1), isIPAddressInRange('10.0.0.1', '10.0.0.0/8')",
    "SELECT t.name, d.engine FROM system.tables AS t JOIN system.databases AS d ON t.database = d.name",
    "SELECT system.tables.name, c FROM system.tables ARRAY JOIN splitByChar(',', primary_key) AS c ORDER BY c",
    "SELECT name AS n, (SELECT n2 FROM numbers(1) ARRAY JOIN [1] AS n2) FROM system.databases ORDER BY n",
]


@pytest.mark.parametrize("sql", ALLOWED + analyst_queries())
def test_policy_when_analysts_read_as_documented_then_allowed(
    connection: Any, catalog: FunctionCatalog, sql: str
) -> None:
    decide(connection, catalog, sql)


OUTSIDE_THE_WAREHOUSE = [
    # the engine's default database is an Overlay over the file system: a path names a host file
    "EXISTS TABLE `/etc/shadow`",
    "EXISTS `/etc/passwd` FORMAT JSON",
    "SELECT * FROM `/etc/passwd`",
    "SELECT * FROM default.`/etc/passwd`",
    "DESCRIBE TABLE `/etc/passwd`",
    "SHOW CREATE TABLE `/etc/passwd`",
    "EXPLAIN SELECT * FROM `/etc/passwd`",
    "EXPLAIN AST EXISTS TABLE default.passwd",
    "SELECT 1 IN default.`/etc/passwd`",
    "SELECT count() FROM tickwave.ticks WHERE symbol GLOBAL NOT IN `/etc/hostname`",
    "SHOW COLUMNS FROM `/etc/passwd`",
    # databases that are not the warehouse's storage
    "SELECT * FROM default.ticks",
    "EXISTS TABLE default.ticks",
    "SHOW TABLES FROM default",
    "EXISTS DATABASE default",
    "SHOW CREATE DATABASE default",
    "USE default",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM nowhere.ticks",
    # names the tree cannot spell plainly
    "SELECT * FROM tickwave.`a.b`",
    "SELECT * FROM `tickwave.ticks`.x",
    "EXISTS TABLE `a b`",
]


@pytest.mark.parametrize("sql", OUTSIDE_THE_WAREHOUSE)
def test_policy_when_the_analyst_names_a_table_outside_the_warehouse_then_refused(
    connection: Any, catalog: FunctionCatalog, sql: str
) -> None:
    with pytest.raises(QueryError) as refused:
        decide(connection, catalog, sql)

    assert refused.value.code == READONLY


@pytest.mark.parametrize("database", ["default", "", "system"])
def test_policy_when_the_analysts_current_database_is_not_the_warehouses_then_refused(
    connection: Any, catalog: FunctionCatalog, database: str
) -> None:
    request = Request(is_analyst=True, database=database, output_format="TabSeparated")

    with pytest.raises(QueryError) as refused:
        decide(connection, catalog, "SELECT 1", request)

    assert refused.value.code == READONLY


def _join_of_system_tables(tables: int) -> str:
    columns = ", ".join(f"t{index}.name" for index in range(tables) for _ in range(10))
    return f"SELECT {columns} FROM " + ", ".join(f"system.tables AS t{index}" for index in range(tables))


def test_policy_when_a_block_joins_many_system_tables_then_decided_in_linear_time(
    connection: Any, catalog: FunctionCatalog
) -> None:
    # 600 tables are 78 KB of SQL: 12 s to decide when each table walked its whole block. The time is
    # compared with the same decision on a sixth of the tables, timed in turn with it (the best of five
    # each): linear is 6x, walking the block per table 36x. Timed as this thread's CPU, with the collector
    # paused: a busy neighbour's preemption, and a full collection over the rest of the test process's
    # heap landing in the larger case, are neither of them the policy's work (the latter gave 17x).
    small, large = 100, 600
    columns = read_system_columns(lambda sql: connection.query(sql, "TabSeparated").bytes())
    policy = ReadOnlyPolicy(catalog, DATABASES, cache_size=0, system_columns=columns)  # no verdict kept
    cases = {}
    for tables in (small, large):
        sql = _join_of_system_tables(tables)
        cases[tables] = (sql, str(connection.query("EXPLAIN AST " + sql, "TabSeparatedRaw").bytes().decode()))
    best = dict.fromkeys(cases, float("inf"))

    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            for tables, (sql, dump) in cases.items():
                started = time.thread_time()
                policy.check(sql, {}, ANALYST, lambda _text, dump=dump: dump)
                best[tables] = min(best[tables], time.thread_time() - started)
    finally:
        gc.enable()

    ratio = best[large] / best[small]
    assert ratio < 16, f"{large} tables took {best[large]:.3f} s, {ratio:.1f}x the {small} tables' {best[small]:.3f} s"


def test_catalog_when_chdb_changes_its_functions_then_the_reviewed_snapshot_must_change_too(
    catalog: FunctionCatalog,
) -> None:
    engine = {name: info for name, info in catalog.functions.items() if info.origin == "System"}
    current = set(allowed_names(engine)) - {"lambda", "exists", "untuple", "grouping", "countDistinct"}
    reviewed = reviewed_functions(SNAPSHOT)

    added, removed = sorted(current - reviewed), sorted(reviewed - current)
    assert not added and not removed, (
        f"the engine's allowed functions changed: new {added}, gone {removed}. Read the new ones' "
        "descriptions in system.functions, then regenerate the snapshot: "
        "python -m warehouse_server.security.catalog > warehouse_server/security/allowed_functions.txt"
    )


def test_policy_when_chdb_changes_its_output_formats_then_each_is_reviewed(connection: Any) -> None:
    engine = set(connection.query("SELECT name FROM system.formats WHERE is_output", "TSV").bytes().decode().split())
    reviewed = OUTPUT_FORMATS | set(REFUSED_OUTPUT_FORMATS)

    assert {name.lower() for name in engine} == reviewed, (
        "the engine's output formats changed: put each new one on OUTPUT_FORMATS or REFUSED_OUTPUT_FORMATS "
        "(warehouse_server/security/allowlist.py) after reading what it does"
    )


@pytest.mark.parametrize(("output_format", "is_allowed"), [("JSON", True), ("protobuf", False), ("Nope", False)])
def test_policy_when_a_format_is_asked_outside_the_sql_then_only_allowed_ones_pass(
    connection: Any, catalog: FunctionCatalog, output_format: str, is_allowed: bool
) -> None:
    request = Request(is_analyst=True, database="tickwave", output_format=output_format)

    if is_allowed:
        decide(connection, catalog, "SELECT 1", request)
    else:
        with pytest.raises(QueryError, match=output_format):
            decide(connection, catalog, "SELECT 1", request)


def test_policy_when_a_function_is_not_in_the_reviewed_snapshot_then_refused_though_its_category_is_allowed(
    connection: Any, catalog: FunctionCatalog
) -> None:
    sql = "SELECT lower('A')"
    decide(connection, catalog, sql)

    policy = _policy(connection, catalog, reviewed=reviewed_functions(SNAPSHOT) - {"lower"})
    with pytest.raises(QueryError, match="lower"):
        policy.check(sql, {}, ANALYST, lambda text: connection.query("EXPLAIN AST " + text, "TSVRaw").bytes().decode())
    assert catalog.lookup("lower") is not None and catalog.lookup("lower").category in ALLOWED_CATEGORIES  # type: ignore[union-attr]


def test_catalog_when_many_unknown_names_arrive_then_it_reloads_at_most_once_per_interval() -> None:
    loads: list[float] = []
    now = [0.0]

    def load() -> tuple[dict[str, FunctionInfo], list[str]]:
        loads.append(now[0])
        time.sleep(0.02)  # a real reload costs tens of milliseconds
        return {"sum": FunctionInfo("Aggregate Functions", "System", True)}, ["If"]

    catalog = FunctionCatalog(load, min_reload_interval_s=60.0, clock=lambda: now[0])
    now[0] = 61.0
    started = time.perf_counter()
    found = [catalog.find(f"unknown_{index}") for index in range(200)]
    elapsed_s = time.perf_counter() - started
    repeated = catalog.find("unknown_0")
    now[0] = 200.0
    again = catalog.find("unknown_0")  # due again, but known unknown since the last reload
    fresh = catalog.find("another_unknown")  # due and not yet known: one reload

    assert found == [None] * 200 and repeated is None and again is None and fresh is None
    assert catalog.reloads == 2 and len(loads) == 3  # the first load, one at 61 s, one at 200 s
    assert elapsed_s < 0.2
    assert catalog.find("sumIf") == ("sum", FunctionInfo("Aggregate Functions", "System", True))


def test_databases_when_the_service_ran_ddl_then_a_database_created_within_the_interval_is_found() -> None:
    databases = {"tickwave": "Atomic"}
    now = [0.0]
    catalog = DatabaseCatalog(lambda: dict(databases), min_reload_interval_s=1.0, clock=lambda: now[0])
    databases["created_now"] = "Atomic"
    now[0] = 0.1

    before_ddl = catalog.engine("created_now")  # within the interval: not read again
    catalog.invalidate()  # the service user's CREATE DATABASE
    after_ddl = catalog.engine("created_now")
    databases["created_later"] = "Atomic"
    unnoticed = catalog.engine("created_later")  # no DDL seen, still within the interval

    assert before_ddl is None and after_ddl == "Atomic" and unnoticed is None


def _graft(dump: str, line_index: int, kind: str) -> str:
    """Add a child of ``kind`` under the dump's line ``line_index``, keeping every count consistent."""
    lines = dump.rstrip("\n").split("\n")
    parent = lines[line_index]
    indent = len(parent) - len(parent.lstrip(" "))
    count = re.search(r" \(children (\d+)\)$", parent)
    declared = int(count.group(1)) if count else 0
    head = parent[: count.start()] if count else parent
    lines[line_index] = f"{head} (children {declared + 1})"
    lines.insert(line_index + 1, " " * (indent + 1) + (f"{kind} '/x'" if kind == "Literal" else kind))
    return "\n".join(lines) + "\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sql=st.sampled_from(ALLOWED),
    where=st.integers(min_value=0, max_value=400),
    kind=st.one_of(
        st.from_regex(r"[A-Z][A-Za-z]{2,30}", fullmatch=True).filter(lambda kind: kind not in ALLOWED_NODE_KINDS),
        st.sampled_from(["ColumnsApplyTransformer", "ColumnsReplaceTransformer", "Literal"]),
    ),
)
def test_policy_when_any_node_is_grafted_outside_the_allow_lists_then_refused(
    connection: Any, catalog: FunctionCatalog, sql: str, where: int, kind: str
) -> None:
    dump = connection.query("EXPLAIN AST " + sql, "TabSeparatedRaw").bytes().decode()
    lines = dump.rstrip("\n").split("\n")
    index = where % len(lines)
    parent_kind = lines[index].strip().split(" ")[0]
    assume(kind != "Literal" or parent_kind not in LITERAL_PARENTS)

    with pytest.raises(QueryError) as refused:
        _policy(connection, catalog).check(sql, {}, ANALYST, lambda _text: _graft(dump, index, kind))

    assert refused.value.code == READONLY


def test_catalog_when_a_case_insensitive_spelling_is_ambiguous_then_the_name_is_unknown() -> None:
    catalog = FunctionCatalog(
        lambda: (
            {
                "aiGenerate": FunctionInfo("AI", "System", False),
                "AIGenerate": FunctionInfo("", "System", False, "aiGenerate"),
                "lower": FunctionInfo("String", "System", False, is_case_insensitive=True),
                "LOWER": FunctionInfo("Other", "System", False, is_case_insensitive=True),  # another function
                "timezone": FunctionInfo("Dates and Times", "System", False, is_case_insensitive=True),
                "timeZone": FunctionInfo("", "System", False, "timezone", is_case_insensitive=True),
            },
            [],
        )
    )

    assert catalog.resolve("AIGENERATE") is None  # not case-insensitive: the engine does not know it
    assert catalog.resolve("AIGenerate") == ("aiGenerate", FunctionInfo("AI", "System", False))
    assert catalog.resolve("Lower") is None  # ambiguous: unknown, so refused
    assert catalog.resolve("lower") == ("lower", FunctionInfo("String", "System", False, is_case_insensitive=True))
    assert catalog.resolve("TIMEZONE") is not None and catalog.resolve("TIMEZONE")[0] == "timezone"  # type: ignore[index]


@pytest.mark.parametrize(("call", "sql"), metadata_queries("tickwave", "ticks"))
def test_policy_when_the_jdbc_driver_connects_and_browses_then_every_query_is_allowed(
    connection: Any, catalog: FunctionCatalog, call: str, sql: str
) -> None:
    decide(connection, catalog, sql)


def test_catalog_when_a_name_comes_in_another_case_then_it_resolves_as_the_engine_resolves_it(
    catalog: FunctionCatalog,
) -> None:
    # system.functions.case_insensitive: if, sum, CAST in any case; toIPv4, aiGenerate only as written
    assert catalog.resolve("IF") == ("if", catalog.functions["if"])
    assert catalog.resolve("SuM") == ("sum", catalog.functions["sum"])
    assert catalog.resolve("SUMIf") == ("sum", catalog.functions["sum"])
    assert catalog.resolve("toIPv4") == ("toIPv4", catalog.functions["toIPv4"])
    assert catalog.resolve("TOIPV4") is None
    assert catalog.resolve("AIGENERATE") is None
    assert catalog.resolve("SUMIF") is None  # the combinator's suffix is matched as written
