"""The execution core's build: what makes it stale, where a process finds it, what it asks for when it cannot build."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app import core_build


@pytest.fixture
def crate(tmp_path: Path) -> Path:
    """A copy of the crate's sources, without cargo's output."""
    copy = tmp_path / "crate"
    shutil.copytree(core_build.CRATE, copy, ignore=shutil.ignore_patterns("target"))
    return copy


def test_core_build_when_prepared_then_a_new_process_imports_the_built_module() -> None:
    # Arrange: make bootstrap built it (the test session refuses to start otherwise)
    assert core_build.is_fresh()
    # Act
    found = subprocess.run(
        [sys.executable, "-c", "import tickwave_core; print(tickwave_core.__file__)"],
        check=True,
        capture_output=True,
        text=True,
        cwd="/",
    ).stdout.strip()
    # Assert
    assert Path(found).is_relative_to(core_build.build_dir()), found


def test_sources_digest_when_a_rust_source_changes_then_it_changes(crate: Path) -> None:
    before = core_build.sources_digest(crate)
    (crate / "src" / "lib.rs").write_text((crate / "src" / "lib.rs").read_text() + "\n// changed\n")
    assert core_build.sources_digest(crate) != before


@pytest.mark.parametrize("name", ["Cargo.lock", "Cargo.toml", "pyproject.toml"])
def test_sources_digest_when_the_build_files_change_then_it_changes(crate: Path, name: str) -> None:
    before = core_build.sources_digest(crate)
    (crate / name).write_text((crate / name).read_text() + "\n")
    assert core_build.sources_digest(crate) != before


def test_sources_digest_when_a_source_is_added_or_renamed_then_it_changes(crate: Path) -> None:
    before = core_build.sources_digest(crate)
    (crate / "src" / "added.rs").write_text("")
    added = core_build.sources_digest(crate)
    (crate / "src" / "added.rs").rename(crate / "src" / "other.rs")
    assert len({before, added, core_build.sources_digest(crate)}) == 3


def test_sources_digest_when_only_cargo_output_or_prose_changes_then_it_is_the_same(crate: Path) -> None:
    before = core_build.sources_digest(crate)
    (crate / "target" / "release").mkdir(parents=True)
    (crate / "target" / "release" / "libtickwave_core.so").write_bytes(b"\0")
    (crate / "README.md").write_text("changed")
    assert core_build.sources_digest(crate) == before


def test_is_fresh_when_a_source_changed_since_the_build_then_false(crate: Path) -> None:
    # Arrange: the environment's build is of the crate's sources, which the copy has
    assert core_build.is_fresh(crate=crate)
    # Act
    (crate / "src" / "lib.rs").write_text((crate / "src" / "lib.rs").read_text() + "\n// changed\n")
    # Assert
    assert not core_build.is_fresh(crate=crate)


def test_is_fresh_when_the_build_folder_is_empty_then_false(tmp_path: Path) -> None:
    assert not core_build.is_fresh(tmp_path)


def test_missing_tools_when_cargo_is_not_on_the_path_then_cargo_and_rustup_are_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    missing = core_build.missing_tools()
    assert missing is not None and "cargo" in missing and "rustup.rs" in missing


def test_main_when_the_build_is_fresh_then_0_without_building(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(core_build, "is_fresh", lambda: True)
    monkeypatch.setattr(core_build, "build", lambda: pytest.fail("built though fresh"))
    assert core_build.main() == 0


def test_main_when_the_build_is_stale_and_cargo_is_missing_then_1_and_cargo_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(core_build, "is_fresh", lambda: False)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert core_build.main() == 1
    assert "cargo" in capsys.readouterr().err


def test_remove_former_build_when_modules_compiled_to_c_are_installed_then_a_new_process_no_longer_loads_them(
    tmp_path: Path,
) -> None:
    # Arrange: an environment's folder of compiled modules, and the .pth that runs its loader at every start
    prefix, purelib = tmp_path / "env", tmp_path / "site-packages"
    folder = prefix / core_build.FORMER_BUILD
    (folder / "modules").mkdir(parents=True)
    (folder / "tickwave_native_loader.py").write_text("raise SystemExit('the compiled modules were loaded')\n")
    purelib.mkdir()
    (purelib / core_build.FORMER_PTH_NAME).write_text(f"{folder}\nimport tickwave_native_loader\n")
    start = [sys.executable, "-c", f"import site; site.addsitedir({str(purelib)!r}); print('sources')"]
    assert subprocess.run(start, capture_output=True, text=True).returncode != 0  # the .pth ran the loader
    # Act
    found = core_build.remove_former_build(prefix, purelib)
    again = core_build.remove_former_build(prefix, purelib)
    # Assert
    assert found and not again
    assert not folder.exists() and list(purelib.iterdir()) == []
    assert subprocess.run(start, check=True, capture_output=True, text=True).stdout.strip() == "sources"
