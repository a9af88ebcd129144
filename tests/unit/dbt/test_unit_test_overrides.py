"""Every dbt unit test of an incremental model sets ``is_incremental``, as dbt requires.

Without the override, dbt asks the warehouse whether the model's own table exists through a
``this`` that a unit test leaves without a schema, and a plain ``dbt build`` (no
``partition_day`` var: the by-hand build dbt/README.md documents) failed at compile time on
``model_performance_daily``'s unit test. The Dagster jobs pass ``partition_day``, so nothing
else ran into it.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

MODELS = Path(__file__).parents[3] / "dbt" / "models"
INCREMENTAL = re.compile(r"materialized\s*=\s*['\"]incremental['\"]")


def incremental_models(folder: Path = MODELS) -> set[str]:
    return {path.stem for path in folder.rglob("*.sql") if INCREMENTAL.search(path.read_text())}


def unit_tests(folder: Path = MODELS) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    for path in folder.rglob("*.yml"):
        found += (yaml.safe_load(path.read_text()) or {}).get("unit_tests", [])
    return found


def test_incremental_models_when_listed_then_the_known_ones_are_found() -> None:
    assert {"model_performance_daily", "execution_quality_daily", "data_quality_daily"} <= incremental_models()


def test_unit_tests_when_their_model_is_incremental_then_is_incremental_is_overridden() -> None:
    incremental = incremental_models()
    tested = [test for test in unit_tests() if test["model"] in incremental]
    assert tested, "no unit test of an incremental model: this test checks nothing"
    missing = [
        test["name"]
        for test in tested
        if not isinstance(test.get("overrides"), dict)
        or "is_incremental" not in (test["overrides"].get("macros") or {})  # type: ignore[union-attr]
    ]
    assert missing == []
