"""Fuzz the read-only policy with statements built from the engine's own grammar and catalog.

A warehouse of its own (so that nothing else writes into its data directory) is started with
the kernel confinement off: the policy alone must hold. Statements come from
:mod:`tests.integration.warehouse.grammar`, seeded; each is sent as the analyst over
keep-alive HTTP (POST, GET, ``param_`` values, gzip bodies). A canary file outside the data
directory must never come back, and the data directory's tree (names, sizes, modification
times) must not change. ``POLICY_FUZZ_QUERIES`` (default 2,000) and ``POLICY_FUZZ_SEED``
(default: random, printed) choose the run; ``make fuzz`` runs 20,000.
"""

from __future__ import annotations

import gzip
import os
import random
import re
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from adapters.endpoints import Endpoint
from adapters.warehouse.credentials import Credentials, resolve_credentials
from tests.integration.warehouse.grammar import PRODUCED_KINDS, EngineCatalog, Grammar, Query
from tests.integration.warehouse.http import _POOL, post
from warehouse_server.security.allowlist import ALLOWED_CATEGORIES

QUERIES = int(os.environ.get("POLICY_FUZZ_QUERIES", "2000"))
SEED = int(os.environ.get("POLICY_FUZZ_SEED", str(random.SystemRandom().randrange(1 << 32))))
SKIPPED_FUNCTIONS = ("sleep", "sleepEachRow")  # allowed, and they only cost time


@pytest.fixture(scope="module")
def fuzz_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Endpoint, Credentials, Path, Path]]:
    from tests.plugins.warehouse import start_warehouse

    state_dir = tmp_path_factory.mktemp("fuzz-state")
    canary = state_dir / "canary.txt"
    canary.write_text(f"canary-{uuid.uuid4().hex}\n")
    supervisor, service, endpoint = start_warehouse(state_dir, confine_engine=False)
    try:
        yield endpoint, resolve_credentials(service.settings), canary, supervisor.data_dir(service)
    finally:
        supervisor.stop(service)


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``root``: its size and modification time (ns)."""
    state = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        state[str(path.relative_to(root))] = (stat.st_size if path.is_file() else 0, stat.st_mtime_ns)
    return state


def read_catalog(endpoint: Endpoint, credentials: Credentials) -> EngineCatalog:
    """Read the engine's functions, combinators, table functions, formats and keywords as the service user."""

    def rows(sql: str) -> list[list[str]]:
        reply = post(endpoint.address, credentials, sql.encode())
        assert reply.status == 200, reply.body
        return [line.split("\t") for line in reply.body.decode().splitlines()]

    functions = rows(
        "SELECT name, is_aggregate, categories, alias_to, "
        "multiSearchAny(lower(concat(arguments, ' ', description)), ['file', 'path', 'host', 'server', 'url']), "
        "position(lower(concat(arguments, ' ', description)), 'file') > 0 "
        "FROM system.functions"
    )
    category = {row[0]: row[2] for row in functions}
    usable = [row for row in functions if not row[0].startswith(SKIPPED_FUNCTIONS)]
    refused = [row for row in usable if category.get(row[3] or row[0], "") not in ALLOWED_CATEGORIES]
    return EngineCatalog(
        functions=tuple(row[0] for row in usable),
        aggregates=tuple(row[0] for row in usable if row[1] == "1"),
        refused_functions=tuple(row[0] for row in refused),
        reaching_functions=tuple(row[0] for row in refused if row[4] == "1"),
        file_functions=tuple(row[0] for row in refused if row[5] == "1"),
        combinators=tuple(row[0] for row in rows("SELECT name FROM system.aggregate_function_combinators")),
        table_functions=tuple(row[0] for row in rows("SELECT name FROM system.table_functions")),
        formats=tuple(row[0] for row in rows("SELECT name FROM system.formats WHERE is_output")),
        keywords=tuple(row[0] for row in rows("SELECT keyword FROM system.keywords")),
    )


def send(endpoint: Endpoint, credentials: Credentials, query: Query, rng: random.Random) -> tuple[str, bytes]:
    """Send ``query`` as the analyst by POST, GET or a gzip body; return the outcome (OK or the error code) and all."""
    auth = {
        "X-ClickHouse-User": credentials.analyst_user,
        "X-ClickHouse-Key": credentials.analyst_password.get_secret_value(),
    }
    params = {f"param_{name}": value for name, value in query.params.items()}
    params["max_execution_time"] = "2"
    url = f"http://{endpoint.address}/"
    transport = rng.random()
    if transport < 0.1:
        response = _POOL.request("GET", url, fields={"query": query.sql, **params}, headers=auth)
    elif transport < 0.15:
        response = _POOL.request(
            "POST",
            f"{url}?{urlencode(params)}",
            body=gzip.compress(query.sql.encode()),
            headers={**auth, "Content-Encoding": "gzip"},
        )
    else:
        response = _POOL.request("POST", f"{url}?{urlencode(params)}", body=query.sql.encode(), headers=auth)
    headers = "".join(f"{name}: {value}\n" for name, value in response.headers.items()).encode()
    outcome = "OK" if response.status == 200 else response.headers.get("X-ClickHouse-Exception-Code", "?")
    return outcome, headers + response.data


def test_policy_when_fuzzed_with_the_engines_grammar_then_no_canary_comes_back_and_no_file_changes(
    fuzz_warehouse: tuple[Endpoint, Credentials, Path, Path],
) -> None:
    endpoint, credentials, canary, data_dir = fuzz_warehouse
    secret = canary.read_text().strip().encode()
    catalog = read_catalog(endpoint, credentials)
    rng = random.Random(SEED)
    planted: list[Path] = []

    def out() -> str:
        planted.append(data_dir / f"planted-{len(planted)}.sql")
        return str(planted[-1])

    grammar = Grammar(catalog, rng, str(canary), out)
    queries = [grammar.statement() for _ in range(QUERIES)]
    print(f"policy fuzz: seed {SEED}, {QUERIES} queries (POLICY_FUZZ_SEED={SEED} to repeat)")
    time.sleep(1.5)  # let the start-up's writes settle before the tree is taken
    before = tree_state(data_dir)

    outcomes: Counter[str] = Counter()
    slowest: list[tuple[float, str]] = []
    for index, query in enumerate(queries):
        started = time.perf_counter()
        outcome, body = send(endpoint, credentials, query, rng)
        slowest = sorted([*slowest, (time.perf_counter() - started, query.sql[:200])])[-5:]
        outcomes[outcome] += 1

        assert secret not in body, f"seed {SEED}, query {index}: the canary came back for {query}"

    after = tree_state(data_dir)
    changed = sorted(set(before.items()) ^ set(after.items()))
    print(f"policy fuzz: answers (OK or error code) {outcomes.most_common(8)}; slowest {slowest[-2:]}")
    assert not [path for path in planted if path.exists()], f"seed {SEED}: an out-file was written"
    assert not changed, f"seed {SEED}: the data directory changed: {changed[:10]}"
    assert outcomes["OK"] > 0, "nothing was allowed: the generator no longer reaches the engine"


def test_grammar_when_statements_are_explained_then_they_cover_the_node_kinds_it_claims(
    fuzz_warehouse: tuple[Endpoint, Credentials, Path, Path],
) -> None:
    endpoint, credentials, canary, _ = fuzz_warehouse
    grammar = Grammar(read_catalog(endpoint, credentials), random.Random(SEED), str(canary), lambda: "/nowhere")
    kinds: set[str] = set()
    for _ in range(150):
        query = grammar.statement()
        params = {f"param_{name}": value for name, value in query.params.items()}
        reply = post(endpoint.address, credentials, f"EXPLAIN AST {query.sql}".encode(), **params)
        if reply.status == 200:
            lines = reply.body.decode("utf-8", "replace").splitlines()
            words = (line.strip().split(" ")[0] for line in lines)
            kinds.update(word for word in words if re.fullmatch(r"[A-Z][A-Za-z:]+", word))

    missing = PRODUCED_KINDS - kinds
    print(f"grammar: 150 statements explained, node kinds {len(kinds)}, never produced {sorted(missing)}")
    assert len(missing) <= 3, f"seed {SEED}: 150 statements never produced {sorted(missing)}"
