"""The policy's tree parser, the analyst's settings allow-list, the concurrency limit and the login guard."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from warehouse_server.protocol import QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING, QueryError
from warehouse_server.security.limits import (
    AnalystLimits,
    ConcurrencyLimit,
    LoginGuard,
    QueryIds,
    analyst_handle_settings,
)
from warehouse_server.security.policy import (
    DatabaseCatalog,
    FunctionCatalog,
    FunctionInfo,
    ReadOnlyPolicy,
    Request,
    parse_ast,
)

DUMP = """SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 2)
    Literal '\\'' (alias a)
    Function file (alias b) (children 1)
     ExpressionList (children 1)
      Literal '/etc/passwd'
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Function numbers (children 1)
       ExpressionList (children 1)
        Literal UInt64_10
"""
LIMITS = AnalystLimits(60, 1 << 30, 1000, 1 << 20, 2)
CATALOG = FunctionCatalog(
    lambda: (
        {
            "file": FunctionInfo("Other", "System", False),
            "sum": FunctionInfo("Aggregate Functions", "System", True),
            "numbers": FunctionInfo("", "System", False),
            "addressToLine": FunctionInfo("Introspection", "System", False),
            "my_udf": FunctionInfo("", "SQLUserDefined", False),
        },
        ["If", "State"],
    )
)
ANALYST = Request(is_analyst=True, database="tickwave", output_format="TSV")


def test_parse_ast_when_dump_is_consistent_then_functions_know_their_parents() -> None:
    tree = parse_ast(DUMP)

    functions = [
        (node.name, node.parent.kind if node.parent else "") for node in tree.walk() if node.kind == "Function"
    ]
    assert functions == [("file", "ExpressionList"), ("numbers", "TableExpression")]


@pytest.mark.parametrize(
    "dump",
    [
        DUMP.replace("SelectQuery (children 2)", "SelectQuery (children 3)"),  # a declared child is missing
        DUMP + "Function file (children 1)\n ExpressionList (children 1)\n",  # a second root
        DUMP.replace("    Function file", "Function file"),  # a line out of its parent's indentation
    ],
)
def test_parse_ast_when_dump_does_not_add_up_then_refused(dump: str) -> None:
    with pytest.raises(QueryError) as refused:
        parse_ast(dump)

    assert refused.value.code == 164


@given(st.text(alphabet=" \nFunctionLiteral()childrn0123456789'", max_size=60))
def test_parse_ast_when_a_name_holds_line_breaks_then_it_never_hides_the_real_call(name: str) -> None:
    dump = DUMP.replace("Literal '\\'' (alias a)", f"Function {name} (children 0)")
    try:
        tree = parse_ast(dump)
    except QueryError:
        return  # refused: fine
    assert "file" in [node.name for node in tree.walk() if node.kind == "Function"]


def check(policy: ReadOnlyPolicy, dump: str, request: Request = ANALYST) -> None:
    policy.check("SELECT", {}, request, lambda _sql: dump)


@pytest.mark.parametrize(
    ("function", "refused"),
    [
        ("sum", False),
        ("sumIf", False),
        ("sumStateIf", False),
        ("file", True),
        ("FILE", True),
        ("s3Cluster", True),
        ("addressToLine", True),
        ("my_udf", True),
        ("dictGetString", True),
    ],
)
def test_policy_when_a_scalar_function_is_called_then_outside_ones_are_refused(function: str, refused: bool) -> None:
    dump = DUMP.replace("Function file (alias b)", f"Function {function} (alias b)")
    policy = ReadOnlyPolicy(CATALOG, DatabaseCatalog(lambda: {"tickwave": "Atomic"}))

    if refused:
        with pytest.raises(QueryError):
            check(policy, dump)
    else:
        check(policy, dump)


@pytest.mark.parametrize(("table_function", "refused"), [("numbers", False), ("values", False), ("newThing", True)])
def test_policy_when_a_table_function_is_used_then_only_the_allow_list_passes(
    table_function: str, refused: bool
) -> None:
    dump = DUMP.replace("Function file (alias b)", "Function sum (alias b)").replace(
        "Function numbers", f"Function {table_function}"
    )
    policy = ReadOnlyPolicy(CATALOG, DatabaseCatalog(lambda: {"tickwave": "Atomic"}))

    if refused:
        with pytest.raises(QueryError, match="Table function"):
            check(policy, dump)
    else:
        check(policy, dump)


def test_policy_when_the_same_query_repeats_then_the_verdict_is_cached() -> None:
    calls: list[str] = []
    policy = ReadOnlyPolicy(CATALOG, DatabaseCatalog(lambda: {"tickwave": "Atomic"}))

    for _ in range(3):
        with pytest.raises(QueryError):
            policy.check("SELECT file('x')", {}, ANALYST, lambda sql: calls.append(sql) or DUMP)

    assert calls == ["SELECT file('x')"]


def test_analyst_settings_when_tighter_or_harmless_then_applied_else_refused() -> None:
    settings = analyst_handle_settings({"max_result_rows": "10", "session_timezone": "Europe/London"}, LIMITS)

    assert settings["max_result_rows"] == "10" and settings["session_timezone"] == "Europe/London"
    assert settings["max_execution_time"] == "60" and settings["result_overflow_mode"] == "throw"
    for name, value in [
        ("max_result_rows", "0"),
        ("max_result_rows", "1001"),
        ("max_threads", "1"),
        ("readonly", "0"),
        ("result_overflow_mode", "break"),
        ("session_timezone", "UTC&readonly=0"),
    ]:
        with pytest.raises(QueryError):
            analyst_handle_settings({name: value}, LIMITS)


def test_concurrency_limit_when_full_then_refused_until_released() -> None:
    limit = ConcurrencyLimit(2)
    first, second = limit.acquire("analyst"), limit.acquire("analyst")

    with pytest.raises(QueryError) as refused:
        limit.acquire("analyst")
    other = limit.acquire("someone-else")
    first()
    first()  # idempotent
    third = limit.acquire("analyst")

    assert refused.value.code == 202
    for release in (second, third, other):
        release()


def test_login_guard_when_failures_reach_the_limit_then_locked_until_the_window_passes() -> None:
    now = [0.0]
    guard = LoginGuard(3, 60.0, clock=lambda: now[0])
    for _ in range(3):
        guard.check("analyst", "10.0.0.1")
        guard.failed("analyst", "10.0.0.1")

    with pytest.raises(QueryError, match="try again in 60 s"):
        guard.check("analyst", "10.0.0.1")
    with pytest.raises(QueryError, match="too many failed login attempts"):
        guard.check("analyst", "10.0.0.2")  # another address: the failures are the user's, wherever they came from
    guard.check("tickwave", "10.0.0.1")  # another user
    now[0] = 60.0
    guard.check("analyst", "10.0.0.1")


def test_login_guard_when_a_user_reaches_the_limit_then_its_answers_are_delayed_until_the_window_passes() -> None:
    now = [0.0]
    guard = LoginGuard(3, 60.0, clock=lambda: now[0], never_locked=["tickwave"], answer_delay_s=1.5)
    delays = []
    for _ in range(3):
        delays.append(guard.delay_s("tickwave"))
        guard.failed("tickwave", "127.0.0.2")
        guard.failed("analyst", "127.0.0.3")

    guard.succeeded("tickwave", "127.0.0.1")  # the pipeline's own login forgets no guesser's failures
    guard.check("tickwave", "127.0.0.4")  # never locked out

    assert delays == [0.0, 0.0, 0.0]
    assert guard.delay_s("tickwave") == guard.delay_s("analyst") == 1.5
    assert guard.delay_s("someone") == 0.0
    now[0] = 60.0
    assert guard.delay_s("tickwave") == guard.delay_s("analyst") == 0.0


def test_login_guard_when_a_flood_of_guesses_arrives_then_the_log_keeps_a_trail_not_a_line_each(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = LoginGuard(3, 60.0, clock=lambda: 0.0, never_locked=["tickwave"])
    caplog.set_level("WARNING", logger="warehouse_server.security.limits")
    for _ in range(1000):
        guard.failed("tickwave", "127.0.0.2")
    for _ in range(3):
        guard.failed("analyst", "127.0.0.3")
    for _ in range(1000):
        with pytest.raises(QueryError):
            guard.check("analyst", "127.0.0.3")

    failed_lines = [r for r in caplog.records if "failed login: user=tickwave" in r.getMessage()]
    lockout_lines = [r for r in caplog.records if "login refused: user=analyst" in r.getMessage()]
    assert len(failed_lines) == 3 + 8  # the first three, then 4, 8, ..., 512
    assert len(lockout_lines) == 1


def test_parse_ast_when_the_tree_passes_max_ast_elements_then_refused_before_it_is_built() -> None:
    dump = "SelectWithUnionQuery (children 1)\n" + " Literal UInt64_1\n" * 60_000

    started = time.perf_counter()
    with pytest.raises(QueryError, match="max_ast_elements"):
        parse_ast(dump)

    assert time.perf_counter() - started < 0.05


def test_query_ids_when_a_read_only_user_names_another_users_id_then_refused_and_the_oldest_forgotten() -> None:
    ids = QueryIds(capacity=2)
    ids.claim("a", "tickwave", is_read_only=False)
    ids.claim("b", "analyst", is_read_only=True)
    ids.claim("b", "analyst", is_read_only=True)  # its own again
    ids.claim("b", "tickwave", is_read_only=False)  # the service user takes any id

    with pytest.raises(QueryError) as refused:
        ids.claim("b", "analyst", is_read_only=True)
    ids.claim("c", "tickwave", is_read_only=False)  # "a" is now the oldest past the capacity
    ids.claim("a", "analyst", is_read_only=True)

    assert refused.value.code == QUERY_WITH_SAME_ID_IS_ALREADY_RUNNING
