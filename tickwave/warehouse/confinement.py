"""Confine the warehouse process to the files it needs, with the kernel's Landlock LSM.

Why: chdb runs ClickHouse in its "local" mode, which does not hold the scalar ``file()``
to ``user_files_path`` (measured: ``file('/tmp/x')`` reads ``/tmp/x`` with
``user_files_path`` set elsewhere). The read-only policy keeps ``file()`` away from the
analyst; this is the layer under it. After reading its secrets, the server restricts
itself (and every thread it starts later) so that the engine can read only the Python
and system libraries, the ``tickwave`` package, zone data and ``/proc``/``/sys``/``/dev``,
and read and write only its own data directory. The state dir's secrets, the home
directory and the rest of the host are then out of reach of any query, even one of the
trusted service user.

Landlock needs Linux 5.13+; it is unprivileged (no root, no capability) and irrevocable.
Where the kernel lacks it, the server logs that it runs unconfined and goes on.
The three system calls are called through ctypes: no maintained Python binding of
Landlock is packaged on PyPI for this use.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

_SYS_CREATE_RULESET = 444  # x86_64 and aarch64 share these numbers
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_READ = _EXECUTE | _READ_FILE | _READ_DIR
_ALL_V1 = (1 << 13) - 1  # execute .. make_sym
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_SYSTEM_READ = ("/usr", "/lib", "/lib64", "/bin", "/proc", "/sys", "/dev", "/etc/localtime", "/etc/ssl")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def landlock_abi() -> int:
    """Return the kernel's Landlock ABI version, or 0 where it is missing."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(0, int(version))


def readable_roots() -> list[Path]:
    """What the server must read: the interpreter, its libraries, the tickwave package, the system's.

    Not the checkout the package may be installed from (an editable install puts it on
    ``sys.path``): the state dir, secrets included, usually lives there.
    """
    package = Path(__file__).resolve().parents[1]
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix), package}
    roots.update(Path(path) for path in _SYSTEM_READ)
    return sorted(root for root in roots if root.exists())


def _add_rule(libc: ctypes.CDLL, ruleset: int, path: Path, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not path.is_dir():
            access &= _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE  # file rules take file rights only
        rule = _PathBeneathAttr(access, fd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def confine_process(writable: Iterable[Path], enabled: bool = True, readable: Iterable[Path] = ()) -> bool:
    """Restrict this process and its future threads to ``writable`` (read-write) and the readable roots.

    Call it before any thread starts (a thread that exists already keeps its access).

    Returns:
        True when the kernel enforces the confinement.
    """
    abi = landlock_abi() if enabled else 0
    if abi == 0:
        if enabled:
            logger.warning("Landlock is unavailable on this kernel: the warehouse runs without file confinement")
        return False
    handled = _ALL_V1 | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0)
    libc = ctypes.CDLL(None, use_errno=True)
    attr = _RulesetAttr(handled)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in [*readable_roots(), *(Path(p) for p in readable)]:
            _add_rule(libc, ruleset, path, _READ)
        for path in writable:
            path.mkdir(parents=True, exist_ok=True)
            _add_rule(libc, ruleset, path, handled)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    logger.info("warehouse confined by Landlock ABI %d: writes only under %s", abi, ", ".join(map(str, writable)))
    return True
