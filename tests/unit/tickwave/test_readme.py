from __future__ import annotations

import re
from pathlib import Path

from tickwave.config import reference_markdown

ROOT = Path(__file__).resolve().parents[3]


def test_configuration_docs_when_settings_change_then_kept_current() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text()
    match = re.search(r"<!-- config-reference:start[^\n]*-->\n(.*?)<!-- config-reference:end -->", text, re.S)

    assert match, "docs/configuration.md lost its config-reference markers"
    assert match.group(1) == reference_markdown(), "run `tickwave config reference --update docs/configuration.md`"


def test_repository_when_checked_out_then_has_the_agreed_layout() -> None:
    for name in (
        "tickwave",
        "adapters",
        "app",
        "warehouse_server",
        "testkit",
        "streams",
        "orchestration",
        "dbt",
        "models",
        "execution",
        "quality",
        "dashboards",
        "reports",
        "tests",
        "bench",
        "pyproject.toml",
        "README.md",
        "Makefile",
        ".ci/run",
        "uv.lock",
    ):
        assert (ROOT / name).exists(), name
    for folder in (
        "tickwave",
        "adapters",
        "app",
        "warehouse_server",
        "testkit",
        "streams",
        "orchestration",
        "dbt",
        "models",
        "execution",
        "quality",
        "dashboards",
        "reports",
        "bench",
        "tests",
        "docs",
    ):
        assert (ROOT / folder / "README.md").is_file(), f"{folder}/README.md"
