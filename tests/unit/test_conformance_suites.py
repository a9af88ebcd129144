"""make conformance's pieces that need no service: the suites' digest check and their counts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conformance.suites import (
    CLICKHOUSE_CONNECT,
    DBT_CLICKHOUSE,
    HERE,
    Counts,
    PythonSuite,
    go_counts,
    junit_counts,
    suite_source,
    tree_digest,
)
from tickwave.errors import ServiceError

PLUGINS = HERE / "plugins"


def _suite(root: Path) -> PythonSuite:
    (root / "tests" / "integration").mkdir(parents=True)
    (root / "tests" / "integration" / "test_a.py").write_text("def test_a():\n    pass\n")
    (root / "pytest.ini").write_text("[pytest]\n")
    digest = tree_digest(root, ("tests", "pytest.ini"))
    return PythonSuite("demo", "1.0", "v1.0", ("tests", "pytest.ini"), digest, (), dict)


def test_suite_source_when_the_files_match_the_pinned_digest_then_the_folder_is_used(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "demo-1.0")

    assert suite_source(suite, tmp_path) == tmp_path / "demo-1.0"


@pytest.mark.parametrize("change", ["edited", "added", "renamed"])
def test_suite_source_when_a_file_of_the_suite_differs_then_it_is_refused(tmp_path: Path, change: str) -> None:
    suite = _suite(tmp_path / "demo-1.0")
    test_file = tmp_path / "demo-1.0" / "tests" / "integration" / "test_a.py"
    if change == "edited":
        test_file.write_text("def test_a():\n    assert False\n")
    elif change == "added":
        (test_file.parent / "conftest.py").write_text("import os\n")
    else:
        test_file.rename(test_file.with_name("test_b.py"))

    with pytest.raises(ServiceError, match="not the pinned"):
        suite_source(suite, tmp_path)


def test_suite_source_when_the_folder_is_missing_then_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match=r"\(missing\)"):
        suite_source(CLICKHOUSE_CONNECT, tmp_path)


@pytest.mark.parametrize(
    ("tree", "label"),
    [("v1.10.1", "dbt-clickhouse-1.10.1"), ("842e4131e76cc44cef00052a48f695c57a5c187c", "dbt-clickhouse-842e4131e76c")],
)
def test_suite_label_when_the_tests_come_from_a_tag_or_a_commit_then_the_folder_names_it(tree: str, label: str) -> None:
    suite = replace(DBT_CLICKHOUSE, tree=tree)

    assert suite.label == label
    assert suite.archive == f"https://github.com/ClickHouse/dbt-clickhouse/archive/{tree}.tar.gz"


def test_junit_counts_when_pytest_reports_each_outcome_then_each_is_counted(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite><testcase classname="t" name="ok"/>'
        '<testcase classname="t" name="bad"><failure message="x"/></testcase>'
        '<testcase classname="t" name="broken"><error message="x"/></testcase>'
        '<testcase classname="t" name="later"><skipped message="x"/></testcase>'
        '<testcase classname="t" name="ok2"/></testsuite></testsuites>'
    )

    counts = junit_counts(report)

    assert (counts.passed, counts.failed, counts.errors, counts.skipped) == (2, 1, 1, 1)
    assert counts.failures == ["t::bad", "t::broken"]
    assert counts.line("demo") == "demo: 2 of 4 passed, 2 failed, 1 skipped"


def test_go_counts_when_tests_and_subtests_end_then_each_final_action_is_counted() -> None:
    events = [
        {"Action": "run", "Package": "p", "Test": "TestA"},
        {"Action": "pass", "Package": "p", "Test": "TestA/http"},
        {"Action": "fail", "Package": "p", "Test": "TestA/native"},
        {"Action": "fail", "Package": "p", "Test": "TestA"},
        {"Action": "skip", "Package": "p", "Test": "TestB"},
        {"Action": "fail", "Package": "p"},
    ]

    counts = go_counts("build output\n" + "\n".join(json.dumps(event) for event in events))

    assert (counts.passed, counts.failed, counts.skipped) == (1, 2, 1)
    assert counts.failures == ["p::TestA/native", "p::TestA"]


def _run_suite_with_plugins(root: Path, plugins: tuple[str, ...]) -> Counts:
    # A pytest run as make conformance starts one: the suite's folder, its plugins on PYTHONPATH.
    report = root / "report.xml"
    arguments = [arg for plugin in plugins for arg in ("-p", plugin)]
    environment = {**os.environ, "PYTHONPATH": str(PLUGINS), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    command = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"]
    subprocess.run([*command, *arguments, f"--junitxml={report}"], cwd=root, env=environment, check=False)
    return junit_counts(report)


def test_dbt_cluster_plugin_when_the_replicated_tests_would_run_first_then_no_later_class_gets_their_engine(
    tmp_path: Path,
) -> None:
    # The suite's layout in small: a session-wide test_config, a replicated-database class whose
    # class fixture writes its engine into it, and an ordinary class collected after it.
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    folder = tmp_path / "tests" / "integration"
    replicated = folder / "adapter" / "replicated_database"
    replicated.mkdir(parents=True)
    (folder / "conftest.py").write_text(
        "import pytest\n\n@pytest.fixture(scope='session')\ndef test_config():\n    return {'db_engine': ''}\n"
    )
    (replicated / "test_replicated_database.py").write_text(
        "import pytest\n\nclass TestReplicatedDatabaseSimpleMaterialization:\n"
        "    @pytest.fixture(scope='class')\n    def test_config(self, test_config):\n"
        "        test_config['db_engine'] = \"Replicated('/clickhouse/databases/{uuid}', '{shard}', '{replica}')\"\n"
        "        return test_config\n\n    def test_base(self, test_config):\n        pass\n"
    )
    (folder / "adapter" / "utils").mkdir()
    (folder / "adapter" / "utils" / "test_unchanged.py").write_text(
        "class TestConcat:\n    def test_build_assert_equal(self, test_config):\n"
        "        assert test_config['db_engine'] == ''\n"
    )

    without = _run_suite_with_plugins(tmp_path, ())
    counts = _run_suite_with_plugins(tmp_path, ("dbt_cluster",))

    assert without.failures == ["tests.integration.adapter.utils.test_unchanged.TestConcat::test_build_assert_equal"]
    assert (counts.passed, counts.failed, counts.skipped) == (1, 0, 1)
