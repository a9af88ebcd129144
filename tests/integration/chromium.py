"""Headless Chromium as a person's browser: what a page shows (its DOM), its screenshot and its print."""

from __future__ import annotations

import subprocess
from pathlib import Path

ARTIFACTS = Path(__file__).parents[1] / "artifacts"  # kept after the run: the screenshots a person can look at


def artifact(name: str) -> Path:
    """The path of a screenshot kept after the run, with an earlier run's removed (it must not pass for this one's)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    path.unlink(missing_ok=True)
    return path


def chromium(
    url: str, profile: Path, *outputs: str, window: str, virtual_time_ms: int = 0, timeout: float = 120
) -> str:
    """Load ``url`` once in headless Chromium with ``profile`` as its user data; return what it printed.

    Args:
        url: the page.
        profile: a folder of the test's own for the browser's user data (its calls may share one).
        outputs: what to make of the page: ``--dump-dom`` (printed), ``--screenshot=<path>``,
            ``--print-to-pdf=<path>``.
        window: the window's size, ``"<width>,<height>"``.
        virtual_time_ms: run the page's scripts for this much virtual time before the outputs
            (a single-page app that loads its data), or not at all when 0.
        timeout: seconds before the browser is given up.
    """
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        f"--window-size={window}",
    ]
    if virtual_time_ms:
        flags.append(f"--virtual-time-budget={virtual_time_ms}")
    done = subprocess.run(
        ["chromium", *flags, *outputs, url], capture_output=True, text=True, timeout=timeout, check=False
    )
    return done.stdout
