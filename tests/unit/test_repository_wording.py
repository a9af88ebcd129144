"""The repository describes the software as it is; git and the issue tracker hold its history.

Every tracked text file is scanned for words about the project's own past: numbered
sessions, stops or defects, this project's issue numbers, commit hashes, "previously",
"used to", "was fixed". A legitimate technical use goes on ``ALLOWED`` with its reason.
"""

from __future__ import annotations

import re
import subprocess
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# (what it is, pattern), matched on lower-cased text. Each pattern starts with its literal (fast to
# scan for); one that starts with a letter counts only at the start of a word (checked in ``found``).
HISTORY_WORDS = [
    ("a numbered session", r"sessions? \d+"),
    ("a numbered stop", r"stops? \d+(?![\d.]*\s*(?:ms|us|s|seconds?|min|minutes?|%)\b)"),
    ("a work period", r"this stop\b"),
    ("an issue number", r"issues? #?\d+"),
    ("a numbered defect", r"defects? #?\d+"),
    ("an issue reference", r"#(?<![\w&/.-]#)\d+\b"),
    ("a commit hash", r"(?:main|branch|commit|revision) (?:at |was )?\(?`?(?=[0-9a-f]*\d)[0-9a-f]{7,40}\b"),
    ("a commit hash", r"`(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{7,12}`"),
    ("a look back", r"previously\b"),
    ("a look back", r"used to\b(?<!is used to)(?<!are used to)(?<!be used to)(?<!been used to)(?<!being used to)"),
    ("a look back", r"(?:was|were) (?:fixed|moved)\b"),
    ("a look back", r"new in (?:this|version|v?\d)"),
]
PATTERNS = [(kind, re.compile(pattern)) for kind, pattern in HISTORY_WORDS]
WORD_CHARACTER = re.compile(r"\w")

# Legitimate technical uses: (file glob, pattern of the allowed text, why).
ALLOWED = [
    (
        "*",
        r"\b(?:dagster|dbt-clickhouse|dbt-core|bytewax|chdb|clickhouse|librdkafka|confluent-kafka-python|quixstreams"
        r"|grafana|onnxruntime|lightgbm|xgboost|great_expectations) #\d+(?:/#\d+)*",
        "an upstream project's issue, cited with the project's name",
    ),
    ("*.py", r"color: #\d+", "a CSS colour in a page template"),
    (
        "*/migrations/0012_compliance.sql",
        r"\(issue 24\)",
        "applied migrations are checksummed: editing one makes every warehouse that applied it refuse to start",
    ),
    ("docs/contributing.md", r'"previously", "used to" or "was fixed"', "the rule itself"),
]
ALLOWED_PATTERNS = [(glob, re.compile(pattern)) for glob, pattern, _why in ALLOWED]


def found(pattern: re.Pattern[str], text: str) -> list[str]:
    """Return the matches of ``pattern`` in lower-cased ``text`` that start a word (or a ``#``/backquote)."""
    return [
        match.group(0)
        for match in pattern.finditer(text)
        if not (match.start() and text[match.start()].isalpha() and WORD_CHARACTER.match(text[match.start() - 1]))
    ]


def history_words(path: str, line: str) -> list[str]:
    """Return what each history word in ``line`` of ``path`` is, after the allowed uses are taken out."""
    line = line.lower()
    for glob, pattern in ALLOWED_PATTERNS:
        if fnmatch(path, glob):
            line = pattern.sub(" ", line)
    return [f"{kind} ({text!r})" for kind, pattern in PATTERNS for text in found(pattern, line)]


def tracked_text_files() -> list[str]:
    """Return every file git tracks that reads as UTF-8 text, but this one (it spells the patterns out)."""
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    paths = []
    for path in listing.decode().split("\0"):
        if not path or path == THIS_FILE or not (ROOT / path).is_file():
            continue
        data = (ROOT / path).read_bytes()
        if b"\0" in data:
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        paths.append(path)
    return paths


def test_repository_when_scanned_then_no_text_speaks_of_its_own_history() -> None:
    files = tracked_text_files()

    texts = {path: (ROOT / path).read_text(encoding="utf-8") for path in files}

    findings = [
        f"{path}:{number}: {', '.join(words)}: {line.strip()[:160]}"
        for path, text in texts.items()
        if any(found(pattern, text.lower()) for _kind, pattern in PATTERNS)
        for number, line in enumerate(text.splitlines(), start=1)
        if (words := history_words(path, line))
    ]

    assert len(files) > 100, "git ls-files found almost nothing"
    assert not findings, "describe the software as it is (history lives in git):\n" + "\n".join(findings)


@pytest.mark.parametrize(
    "line",
    [
        "Session 11 (2026-11-22): the latency's floor, measured beside the flow.",
        "the rows before stop 31's show orders only where they were real",
        "Tried this stop and dropped:",
        "Targets (issue 25): the trader board's slowest panel p95 under 100 ms.",
        "# -- hedging accounts (issue 23, defect 6) ----",
        "see #23 for the discussion",
        "main at `dac3183`, one key per symbol",
        "the code before this change (`1ca6eb3`) on the same VM",
        "It used to return at once and ask Bytewax to call again.",
        "The floor was previously timed before the path.",
        "The race was fixed by taking the lock.",
    ],
)
def test_history_words_when_a_line_speaks_of_the_past_then_found(line: str) -> None:
    assert history_words("streams/README.md", line)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("orchestration/README.md", "(dagster #25112/#18472 concern dbt tests, not this Python check)"),
        ("dbt/README.md", "never adds `FINAL` itself (dbt-clickhouse #462)."),
        ("reports/html.py", "body { font: 13px/1.4 system-ui, sans-serif; margin: 24px; color: #111; }"),
        ("tests/conftest.py", '@pytest.fixture(scope="session")'),
        ("execution/connectors.py", '"session.timeout.ms": 6000,'),
        ("tickwave/signing.py", "the key is used to sign every control command"),
        ("tests/chaos/harness.py", "kills -9 the broker, freezes the warehouse and stops 5 s later"),
        ("docs/operations.md", "`tickwave execution halt` stops new orders; `resume` restarts them"),
        ("tickwave/warehouse/migrations/0012_compliance.sql", "-- Compliance (issue 24): every order event"),
    ],
)
def test_history_words_when_a_technical_use_then_allowed(path: str, line: str) -> None:
    assert not history_words(path, line)
