"""The state dir is its owner's only: the walk that closes an old one, and the umask of the entry points."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.private_files import OPEN_BITS, tighten
from tickwave.errors import ConfigurationError


@pytest.fixture
def shared_umask() -> Iterator[None]:
    """Run the test under the default umask most accounts have (022), whatever pytest's was."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_tighten_when_the_state_dir_is_missing_then_it_is_made_0700_and_nothing_is_said(
    tmp_path: Path, shared_umask: None
) -> None:
    # Arrange
    state = tmp_path / "home" / "state"

    # Act
    tightened = tighten(state)

    # Assert
    assert mode(state) == 0o700
    assert tightened.opened == 0 and tightened.line(state) is None


def test_tighten_when_an_old_state_dir_is_open_then_every_file_and_folder_loses_the_group_and_other_bits(
    tmp_path: Path, shared_umask: None
) -> None:
    # Arrange: a state dir as the services left it under umask 022, a link out of it to a file elsewhere
    state = tmp_path / "state"
    (state / "data" / "warehouse" / "part").mkdir(parents=True)
    (state / "data" / "warehouse" / "part" / "data.bin").write_bytes(b"fills")
    (state / "execution").mkdir()
    (state / "execution" / "journal.jsonl").write_text("{}\n")
    (state / "execution" / "journal.jsonl").chmod(0o664)
    (state / "secrets").mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not the state dir's")
    (state / "data" / "link").symlink_to(elsewhere)

    # Act
    tightened = tighten(state)
    again = tighten(state)

    # Assert
    assert mode(state) == 0o700
    assert mode(state / "data" / "warehouse" / "part") == 0o700
    assert mode(state / "data" / "warehouse" / "part" / "data.bin") == 0o600
    assert mode(state / "execution" / "journal.jsonl") == 0o600
    assert mode(elsewhere) == 0o644  # the link was not followed
    every = [path for path in state.rglob("*") if not path.is_symlink()]
    assert [path for path in every if path.lstat().st_mode & OPEN_BITS] == []
    assert tightened.opened == 7  # the state dir, data, warehouse, part, data.bin, execution, the journal
    assert tightened.walked == 9  # and secrets (already 0700), the link
    assert tightened.line(state) == (
        f"state dir {state} was open to other accounts: 7 of 9 files and folders made the owner's only "
        f"(mode 0700/0600, {tightened.elapsed_s:.2f} s)"
    )
    assert again.opened == 0 and again.line(state) is None


@pytest.mark.parametrize(
    "entry_point",
    [
        "import sys; sys.argv = ['tickwave', '--help']; from app.cli import main; main()",
        "from execution.__main__ import main; main(['--help'])",
        "from warehouse_server.main import main; main(['--help'])",
    ],
    ids=["tickwave", "python -m execution", "python -m warehouse_server"],
)
def test_entry_point_when_started_under_umask_022_then_what_it_creates_is_the_owners_only(
    tmp_path: Path, shared_umask: None, entry_point: str
) -> None:
    # Arrange: the entry point starts (and ends at once: help or usage), then the process writes a file and a
    # folder as any of its code would
    code = (
        "import atexit, os, pathlib;"
        f"atexit.register(lambda: (pathlib.Path({str(tmp_path)!r}, 'file').write_text('x'),"
        f" pathlib.Path({str(tmp_path)!r}, 'folder').mkdir()));"
        f"{entry_point}"
    )

    # Act
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)

    # Assert
    assert (tmp_path / "file").exists(), result.stdout + result.stderr
    assert mode(tmp_path / "file") == 0o600
    assert mode(tmp_path / "folder") == 0o700


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another account needs root")
def test_tighten_when_another_account_owns_the_state_dir_then_it_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    # Arrange: a state dir made in advance by another account (as one could in a folder everyone may write)
    state = tmp_path / "state"
    state.mkdir(mode=0o777)
    state.chmod(0o777)
    os.chown(state, 65534, 65534)

    # Act
    with pytest.raises(ConfigurationError, match="belongs to uid 65534, not to this account"):
        tighten(state)

    # Assert
    assert mode(state) == 0o777


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a link to another account needs root")
def test_tighten_when_the_path_passes_another_accounts_link_then_it_is_refused_and_its_target_is_untouched(
    tmp_path: Path, shared_umask: None
) -> None:
    # Arrange: in a shared folder, another account's link named like the state dir, to a folder of root's
    system = tmp_path / "system"
    system.mkdir()
    (system / "config").write_text("everyone reads this")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "state").symlink_to(system)
    os.lchown(shared / "state", 65534, 65534)
    (tmp_path / "mine").symlink_to(shared)  # a link of this account's on the way is followed

    # Act
    with pytest.raises(ConfigurationError, match=r"passes the link .*shared/state, owned by uid 65534"):
        tighten(tmp_path / "mine" / "state")
    made = tighten(tmp_path / "mine" / "own")

    # Assert
    assert mode(system) == 0o755 and mode(system / "config") == 0o644
    assert mode(shared / "own") == 0o700 and made.line(shared / "own") is None
