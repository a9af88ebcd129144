"""Fixtures of the kernel's unit tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Remove every TICKWAVE_* variable and work in an empty directory (no tickwave.toml)."""
    for name in list(os.environ):
        if name.upper().startswith("TICKWAVE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
