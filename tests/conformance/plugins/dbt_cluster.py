"""A pytest plugin for dbt-clickhouse's suite: its cluster tests are skipped, each with the reason.

The suite's own CI runs it only on a cluster (three servers, ClickHouse Keeper,
``DBT_CH_TEST_CLUSTER=test_shard``); the warehouse is one server without Keeper, so it runs the suite
without a cluster, and counts its non-cluster tests. Most cluster tests skip themselves then
(``Not on a cluster``); these do not, though they cannot pass on any single server:

- the replicated-database tests create their database with ``ENGINE Replicated(...)``, which needs
  Keeper and the ``{shard}``/``{replica}`` macros. Their ``test_config`` fixture also writes the
  engine into the session's shared ``test_config`` dict, so once they ran, every later test class
  created its database with that engine too (Code 36): skipped, they never run that fixture;
- four Distributed contract tests run models of the ``distributed_table`` materialization, which
  refuses to compile without a cluster in the profile.
"""

from __future__ import annotations

import pytest

_REPLICATED = "needs a cluster: a Replicated database needs ClickHouse Keeper and the shard and replica macros"
_DISTRIBUTED = "needs a cluster: the distributed_table materialization needs the profile's cluster"

_CONSTRAINTS = "tests/integration/adapter/constraints/test_constraints.py"

CLUSTER_TESTS = {
    "tests/integration/adapter/replicated_database/test_replicated_database.py::": _REPLICATED,
    # Only the tests that run the classes' distributed models: the data type tests build their own.
    f"{_CONSTRAINTS}::TestDistributedTableContractColumnsEqual::test__contract_wrong_column_order": _DISTRIBUTED,
    f"{_CONSTRAINTS}::TestDistributedTableContractColumnsEqual::test__contract_wrong_column_names": _DISTRIBUTED,
    f"{_CONSTRAINTS}::TestDistributedIncrementalContractColumnsEqual::": _DISTRIBUTED,
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each cluster test skipped with its reason, before any of its fixtures runs."""
    for item in items:
        for prefix, reason in CLUSTER_TESTS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.skip(reason=reason))
