"""What `make demo` and `make test` ask of a machine, tried with the test toolchain hidden from PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
# What the Makefile's checks themselves run: a shell and the text tools.
SHELL_TOOLS = ("bash", "sh", "sed", "grep", "head", "id", "ls", "awk", "env", "cat")


def path_with(tmp_path: Path, *tools: str) -> str:
    """Return a PATH of one folder that holds links to ``tools`` and nothing else."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for tool in (*SHELL_TOOLS, "make", *tools):
        found = shutil.which(tool)
        assert found, f"{tool} is needed on this machine to run the test"
        (folder / tool).symlink_to(found)
    return str(folder)


def run_make(target: str, path: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "CC")} | {"PATH": path}
    return subprocess.run(
        [shutil.which("make") or "make", "--no-print-directory", "-s", target, f"PYTHON={sys.executable}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_demo_prereqs_when_only_python_java_and_rust_are_there_then_it_passes(tmp_path: Path) -> None:
    done = run_make("demo-prereqs", path_with(tmp_path, "java", "cargo", "rustc"))

    assert done.returncode == 0, done.stdout + done.stderr
    assert "missing" not in done.stdout


def test_demo_prereqs_when_cargo_is_missing_then_it_names_rust_and_rustup(tmp_path: Path) -> None:
    done = run_make("demo-prereqs", path_with(tmp_path, "java"))

    assert done.returncode != 0
    assert "missing: Rust 1.88+ (cargo and rustc), to build the execution core" in done.stdout
    assert "https://rustup.rs" in done.stdout


def test_demo_prereqs_when_rust_is_older_than_the_crate_needs_then_it_says_which_it_found(tmp_path: Path) -> None:
    path = path_with(tmp_path, "java", "cargo")
    rustc = Path(path) / "rustc"
    rustc.write_text('#!/bin/sh\necho "rustc 1.70.0 (90c541806 2023-05-31)"\n')
    rustc.chmod(0o755)

    done = run_make("demo-prereqs", path)

    assert done.returncode != 0
    assert "missing: Rust 1.88+ (found rustc 1.70.0" in done.stdout


def test_demo_prereqs_when_java_is_missing_then_it_says_how_to_install_it(tmp_path: Path) -> None:
    done = run_make("demo-prereqs", path_with(tmp_path))

    assert done.returncode != 0
    assert "missing: Java 17+" in done.stdout
    assert "apt-get install openjdk-17-jre-headless" in done.stdout


def test_prereqs_when_the_test_toolchain_is_hidden_then_each_missing_tool_is_named(tmp_path: Path) -> None:
    done = run_make("prereqs", path_with(tmp_path, "java", "cargo", "rustc"))

    assert done.returncode != 0
    assert "missing: Go 1.22+" in done.stdout
    assert "C compiler" not in done.stdout and "C headers" not in done.stdout, "the core is the crate: cargo builds it"
    assert "missing: Java" not in done.stdout
    assert "installing" not in done.stdout, "with apt-get hidden nothing is installed"
