"""Every file path the docs name exists: the README, docs/ and each folder's README.

A path is a relative Markdown link, or a backticked word that holds a ``/`` or ends in a
file extension. A path with a folder resolves against the doc's folder, the repository's
root or as the tail of a tracked path (``contracts/core.py``); a bare file name must be a
tracked file under the doc's own folder or ``tests/`` (the top-level docs: anywhere).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
CODE = re.compile(r"`([^`\s]+)`")
EXTENSIONS = (".py", ".md", ".sql", ".toml", ".yml", ".yaml", ".json", ".txt", ".sh", ".xml", ".go", ".mod", ".sum")
EXTENSIONS += (".lock", ".cfg", ".ini", ".html", ".csv", ".png", ".svg", ".parquet", ".j2")
# Files the software writes or reads at run time, never in the repository (the state dir,
# the user's settings file, generated Grafana and Dagster files, a report's day folder).
RUNTIME_FILES = frozenset(
    {
        "tickwave.toml",
        "dagster.yaml",
        "workspace.yaml",
        "manifest.json",
        "pruned.json",
        "report.html",
        "equity.png",
        "drawdown.png",
        "feature_importance.png",
        "calibration.png",
        "confusion_matrix.png",
        "mlflow_training_run.png",
    }
)
# Folders the software fills at run time: the state dir's (`run/`, `data/`, `secrets/`, `prometheus/`),
# a training run's report, the tests' screenshots.
RUNTIME_FOLDERS = ("run/", "data/", "secrets/", "prometheus/", "report/", "tests/artifacts/")
# Backticked words with a slash that are not paths: metadata keys, MIME types, Go modules.
NOT_PATHS = re.compile(r"^(dagster/|multipart/|application/|text/|github\.com/|n/a$|[A-Z][a-z]+/[A-Z])")


def tracked() -> tuple[set[str], set[str]]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    files = {name for name in listed if (ROOT / name).exists()}
    folders = {str(parent) for name in files for parent in PurePosixPath(name).parents if str(parent) != "."}
    return files, folders


FILES, FOLDERS = tracked()


def docs() -> list[str]:
    return sorted(
        name
        for name in FILES
        if name.endswith(".md") and (name in ("README.md",) or name.startswith("docs/") or name.endswith("/README.md"))
    )


def named_paths(text: str) -> list[str]:
    """Return what the text names as a path, placeholders, URLs and runtime files left out."""
    found = [match.group(1) for match in LINK.finditer(text)]
    found += [word for word in CODE.findall(text) if "/" in word or word.rstrip(".:,").endswith(EXTENSIONS)]
    paths = []
    for raw in found:
        word = re.sub(r":\d+$", "", raw.rstrip(".:,"))
        if (
            "://" in raw
            or word.startswith(("~", "$", "-", "/", ".tickwave", ".venv", "<", *RUNTIME_FOLDERS))
            or re.search(r"[*<>{}|=,;()\"'…]|\.\.\.|NNNN|DIR/", word)
            or NOT_PATHS.match(word)
            or PurePosixPath(word).name in RUNTIME_FILES
        ):
            continue
        paths.append(word)
    return paths


def exists(doc: str, path: str) -> bool:
    """Whether ``path``, named in ``doc``, is a tracked file or folder (see the module's rule)."""
    path = path.removeprefix("./").rstrip("/")
    folder = str(PurePosixPath(doc).parent)
    known = FILES | FOLDERS
    if path in known or str(PurePosixPath(folder, path)) in known:
        return True
    if "/" in path:
        resolved = str(PurePosixPath(folder, path)) if folder != "." else path
        normal = str(Path(ROOT, resolved).resolve().relative_to(ROOT)) if ".." in resolved else resolved
        return normal in known or path in known or any(name.endswith("/" + path) for name in known)
    scope = ("",) if folder in (".", "docs") else (folder + "/", "tests/")
    return any(PurePosixPath(name).name == path and name.startswith(scope) for name in known)


@pytest.mark.parametrize("doc", docs())
def test_doc_when_its_paths_are_resolved_then_each_exists(doc: str) -> None:
    missing = sorted({path for path in named_paths((ROOT / doc).read_text(encoding="utf-8")) if not exists(doc, path)})

    assert missing == [], f"{doc} names paths that do not exist: {missing}"


@pytest.mark.parametrize(
    ("doc", "path", "expected"),
    [
        ("adapters/README.md", "warehouse/client.py", True),
        ("adapters/README.md", "client.py", True),
        ("adapters/README.md", "nowhere.py", False),
        ("docs/operations.md", "app/services/kafka/pom.xml", True),
        ("docs/operations.md", "tickwave/config.py", False),
        ("README.md", "docs/architecture.md", True),
        ("testkit/README.md", "writer.py", False),
    ],
)
def test_exists_when_a_path_is_named_then_it_resolves_by_the_rule(doc: str, path: str, expected: bool) -> None:
    assert exists(doc, path) is expected


def test_named_paths_when_urls_placeholders_and_runtime_files_then_only_paths_remain() -> None:
    text = "See [the docs](docs/a.md#x), `https://x.org/a.py`, `<dir>/a.py`, `tickwave.toml`, `Europe/Paris`, `b/c.py`."

    assert named_paths(text) == ["docs/a.md", "b/c.py"]
