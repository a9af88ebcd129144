"""dbt's partial parse saved per variables and warehouse, and the target folders it runs in, with real dbt.

``dbt parse`` needs no warehouse, so these run dbt itself against the project without one.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from orchestration.dbt_project import (
    DBT_EXECUTABLE,
    DBT_PROJECT_DIR,
    PARSES,
    parse_key,
    private_target,
)

VARIABLES = json.dumps({"parse_test": "one"})


def parse(target: Path, database: str) -> str:
    """Run ``dbt parse`` in ``target`` for ``database``; return how dbt says it parsed."""
    environment = {
        **os.environ,
        "DBT_CLICKHOUSE_DATABASE": database,
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    arguments = ["--project-dir", str(DBT_PROJECT_DIR), "--target-path", str(target), "--log-path", str(target)]
    done = subprocess.run(
        [DBT_EXECUTABLE, "parse", *arguments, "--vars", VARIABLES],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=environment,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    lines = (target / "dbt.log").read_text().splitlines()
    return " ".join(line for line in lines if "partial pars" in line.lower())


def keyed(database: str) -> str:
    return parse_key(VARIABLES, {"DBT_CLICKHOUSE_DATABASE": database})


def test_private_target_when_run_twice_for_one_key_then_the_second_parses_nothing() -> None:
    database = f"parses_{os.getpid()}"
    saved = PARSES / f"{keyed(database)}.msgpack"
    saved.unlink(missing_ok=True)
    try:
        with private_target("parse", keyed(database)) as target:
            first = parse(target, database)
        with private_target("parse", keyed(database)) as target:
            second = parse(target, database)
    finally:
        saved.unlink(missing_ok=True)

    assert "saved manifest not found" in first, first
    assert "Nothing changed, skipping partial parsing" in second, second


def test_parse_key_when_the_password_changes_then_the_same_and_when_vars_or_warehouse_change_then_not() -> None:
    base = {"DBT_CLICKHOUSE_HOST": "127.0.0.1", "DBT_CLICKHOUSE_PORT": "18123", "DBT_CLICKHOUSE_DATABASE": "tickwave"}

    same = parse_key(VARIABLES, {**base, "DBT_CLICKHOUSE_PASSWORD": "another"})
    changed = {
        parse_key(json.dumps({"parse_test": "two"}), base),
        parse_key(VARIABLES, {**base, "DBT_CLICKHOUSE_PORT": "18124"}),
        parse_key(VARIABLES, {**base, "DBT_CLICKHOUSE_DATABASE": "other"}),
    }

    assert same == parse_key(VARIABLES, base)  # dbt leaves the password out of its profile hash
    assert parse_key(VARIABLES, base) not in changed and len(changed) == 3


def test_private_target_when_the_invocation_raises_then_its_folder_is_kept_for_reading() -> None:
    with pytest.raises(RuntimeError), private_target("kept") as target:
        (target / "dbt.log").write_text("what went wrong")
        raise RuntimeError("dbt failed")

    kept = DBT_PROJECT_DIR / "target" / f"failed-{target.name}"
    try:
        assert not target.exists() and (kept / "dbt.log").read_text() == "what went wrong"
    finally:
        subprocess.run(["rm", "-rf", str(kept)], check=True)
