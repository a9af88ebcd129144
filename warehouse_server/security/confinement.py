"""Confine the warehouse process to what it needs, with the kernel's Landlock LSM.

Why: chdb runs ClickHouse in its "local" mode, which does not hold the scalar ``file()``
to ``user_files_path`` (measured: ``file('/tmp/x')`` reads ``/tmp/x`` with
``user_files_path`` set elsewhere). The read-only policy keeps ``file()`` away from the
analyst; this is the layer under it, and it does not depend on the policy being right.

After reading its passwords (from an inherited descriptor, see
:mod:`adapters.warehouse.credentials`), the server restricts itself and every thread it
starts later to the exact list :func:`warehouse_rules` returns, closed by default:

- read: the Python standard library and the virtual environment's packages, the
  ``tickwave`` and ``warehouse_server`` packages, the system's shared-library directories, zone data, and single
  files of ``/proc``, ``/sys`` and ``/dev`` (``null``, ``zero``, ``urandom``), each named
  below with the reason the engine opens it;
- read and write: the warehouse's data directory only;
- execute: nothing (neither the engine nor a query may start a program);
- network, on Landlock ABI 4+ (Linux 6.7+): bind its own TCP port, connect nowhere, so
  ``url()``, ``remote()``, ``s3()`` and friends fail in the kernel even if the policy
  misses one; on ABI 6+ it may also neither signal processes outside itself nor reach
  abstract Unix sockets.

Landlock rules on a directory cover its whole subtree, so ``/proc``, ``/sys``, ``/dev``
and ``/etc`` are granted file by file (``/proc/self/environ``, ``/proc/self/mem``,
``/dev/shm``, ``/etc/ssl`` stay out). Per-thread ``/proc/thread-self`` files stay out
too: a rule for them would be a directory rule on ``/proc/self/task``, which holds every
thread's ``environ`` and ``mem``; the engine then goes without per-thread I/O counters.

Landlock needs Linux 5.13+; it is unprivileged (no root, no capability) and irrevocable.
Without it the server logs that it runs unconfined and goes on; with ABI 1-3 it logs
that the network is not confined. The three system calls are called through ctypes: the
PyPI bindings are a filesystem-only pre-release (``landlock``) or young 0.x packages.
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform
import sys
import sysconfig
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import tickwave
from adapters.warehouse.credentials import CREDENTIALS_FD_VARIABLE, Credentials, hand_over
from tickwave.config import CONFIG_FILE_ENV, Settings, to_environment

logger = logging.getLogger(__name__)

_SYS_CREATE_RULESET = 444  # x86_64 and aarch64 share these numbers
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_RULE_NET_PORT = 2
_PR_SET_NO_NEW_PRIVS = 38

# Filesystem rights (landlock.h), by the ABI that introduced them.
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_ALL_V1 = (1 << 13) - 1  # execute .. make_sym
_REFER = 1 << 13  # ABI 2
_TRUNCATE = 1 << 14  # ABI 3
_IOCTL_DEV = 1 << 15  # ABI 5
_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV  # what a rule on a file may carry
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1  # ABI 4
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1  # ABI 6
NETWORK_ABI = 4

# Where the dynamic loader finds shared libraries the engine and Python's extension
# modules load (libssl, libstdc++, ... are loaded after confinement, on first use).
_LIBRARY_DIRS = ("/lib64", "/usr/lib64", "/lib/{multiarch}", "/usr/lib/{multiarch}")
_ZONE_DATA = ("/usr/share/zoneinfo",)
# Single files, each opened by the engine or the interpreter after confinement (found with
# `strace -f -e trace=openat` over start, inserts, merges and queries).
_DEVICES_READ = ("/dev/zero", "/dev/urandom")  # zero pages; the engine's random seeds (per query)
_DEVICES_READ_WRITE = ("/dev/null",)
_KERNEL_FILES = (
    "/proc/self/loginuid",  # the engine's client info, per query
    "/proc/self/maps",  # the engine's memory map at start (symbolizer, allocator)
    "/proc/self/auxv",  # the engine's CPU features at start
    "/proc/self/cgroup",  # where the cgroup v2 limits below live
    "/proc/self/statm",  # the server's resident size, to give memory back after a spike
    "/proc/sys/vm/overcommit_memory",  # the allocator's start
    "/sys/kernel/mm/transparent_hugepage/enabled",  # the allocator's start
    "/sys/devices/system/cpu/online",  # thread pool sizes
    "/sys/devices/system/cpu/possible",
    "/sys/fs/cgroup/memory/memory.limit_in_bytes",  # cgroup v1: the memory limit the engine sizes itself to
    "/sys/fs/cgroup/memory/memory.stat",
    "/sys/fs/cgroup/memory/memory.usage_in_bytes",
    "/sys/fs/cgroup/cpu/cpu.cfs_quota_us",  # cgroup v1: the CPU quota
    "/sys/fs/cgroup/cpu/cpu.cfs_period_us",
)
# Host names, read by name lookups: a dictionary's CLICKHOUSE source names this server as
# `localhost` (its default host), which the engine resolves, sees is itself and queries in
# process, with no connection. Neither file holds a secret; nothing else of /etc is granted.
_NAME_FILES = ("/etc/hosts", "/etc/nsswitch.conf")
_CGROUP_V2_FILES = ("memory.max", "memory.current", "memory.stat", "cpu.max")  # under the process's own cgroup
_NUMA_DIR = "/sys/devices/system/node"  # listed (not its files' contents) to count NUMA nodes


# The host variables the warehouse inherits; everything else (a password docs/operations.md lets
# users export, cloud keys, tokens) is left behind. Its configuration comes from the
# parent's resolved settings, without their secrets.
INHERITED_VARIABLES = (
    "LANG",  # text encoding of the log
    "LC_ALL",
    "LC_CTYPE",
    "PYTHONPATH",  # where tickwave is importable from, when not installed
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PYTHONFAULTHANDLER",
    "MALLOC_ARENA_MAX",  # glibc's arenas for the Python side (the supervisor sets 2)
    CONFIG_FILE_ENV,  # the same configuration file (a path; its secrets stay in the file)
)
_WAREHOUSE_SETTINGS = ("TICKWAVE_CLICKHOUSE_", "TICKWAVE_STATE_DIR", "TICKWAVE_LOG_LEVEL")  # what it reads


def scrubbed_environment(settings: Settings, inherited: Mapping[str, str]) -> dict[str, str]:
    """Return the warehouse's whole environment: allow-listed host variables, its secret-free settings, UTC."""
    environment = {name: inherited[name] for name in INHERITED_VARIABLES if name in inherited}
    settings_environment = to_environment(settings, include_secrets=False)
    environment.update(
        (name, value) for name, value in settings_environment.items() if name.startswith(_WAREHOUSE_SETTINGS)
    )
    environment["TZ"] = "UTC"  # the engine reads the zone once, at start
    return environment


def exec_scrubbed(settings: Settings, credentials: Credentials, port: int, data_dir: Path) -> NoReturn:
    """Replace this process by ``python -m warehouse_server serve`` with a scrubbed environment.

    Clearing ``os.environ`` would not do: ``/proc/self/environ`` shows the environment the
    process was executed with. The new image keeps the pid (a supervisor's record stays
    right) and receives the passwords on an inherited pipe named by
    ``TW_WAREHOUSE_CREDENTIALS_FD``, which it reads and closes before confining itself.
    """
    environment = scrubbed_environment(settings, os.environ)
    environment[CREDENTIALS_FD_VARIABLE] = str(hand_over(credentials))
    command = [sys.executable, "-m", "warehouse_server", "serve", "--port", str(port), "--data-dir", str(data_dir)]
    for handler in logging.getLogger().handlers:
        handler.flush()
    os.execve(sys.executable, command, environment)  # noqa: S606 - our own interpreter, fixed arguments


@dataclass(frozen=True)
class Rules:
    """What a confined process may reach; everything else is refused by the kernel.

    Attributes:
        read_trees: directories readable with their whole subtree.
        read_files: single files (or devices) readable.
        read_write_files: single files (or devices) readable and writable.
        listable_dirs: directories whose entries may be listed, and nothing below them read.
        write_trees: directories readable and writable with their subtree (create, delete, rename).
        bind_port: the one TCP port the process may bind (ABI 4+); it may connect to none.
    """

    read_trees: tuple[Path, ...]
    read_files: tuple[Path, ...]
    read_write_files: tuple[Path, ...]
    listable_dirs: tuple[Path, ...]
    write_trees: tuple[Path, ...]
    bind_port: int | None

    def grant_for(self, path: Path) -> str | None:
        """Return which kind of rule lets ``path`` (resolved) be opened for reading, or None.

        One of ``"tree"`` (under a readable or writable directory), ``"file"`` (a single
        file rule) or ``"listing"`` (a directory under a listable one).
        """
        resolved = path.resolve()

        def under(roots: tuple[Path, ...]) -> bool:
            return any(resolved == root or root in resolved.parents for root in roots)

        if under((*self.read_trees, *self.write_trees)):
            return "tree"
        if resolved in (*self.read_files, *self.read_write_files):
            return "file"
        if resolved.is_dir() and under(self.listable_dirs):
            return "listing"
        return None


def _existing(paths: list[Path]) -> tuple[Path, ...]:
    # Resolved (the kernel attaches a rule to the inode, so a symlink names its target),
    # missing ones dropped (the lists name what several distributions and kernels use).
    return tuple(sorted({path.resolve() for path in paths if path.exists()}))


def _python_trees() -> list[Path]:
    # The standard library (lib-dynload included), the environment's site-packages, the
    # kernel package and this server's package, the parent of this module's (an editable install
    # puts its checkout on sys.path: only the two package directories are granted, not the
    # checkout, where the state dir usually lives).
    paths = sysconfig.get_paths()
    trees = [Path(paths[key]) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    return [*trees, Path(tickwave.__file__).resolve().parent, Path(__file__).resolve().parents[1]]


def _python_files() -> list[Path]:
    library = Path(sysconfig.get_config_var("LIBDIR") or "/nonexistent") / (
        sysconfig.get_config_var("INSTSONAME") or "nonexistent"
    )
    return [Path(sys.executable), library]


def _cgroup_v2_files() -> list[Path]:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return []
    own = [line.split("::", 1)[1] for line in lines if line.startswith("0::")]
    if not own:
        return []
    directory = Path("/sys/fs/cgroup") / own[0].lstrip("/")
    return [directory / name for name in _CGROUP_V2_FILES]


def warehouse_rules(data_dir: Path, port: int | None) -> Rules:
    """Return the warehouse's rules: its data directory read-write, what it runs on read-only.

    Args:
        data_dir: the warehouse's data directory (chdb files, sandbox, scratch).
        port: the TCP port it serves on, or None to bind none.
    """
    multiarch = getattr(sys.implementation, "_multiarch", "") or "nonexistent"
    library_dirs = [Path(pattern.format(multiarch=multiarch)) for pattern in _LIBRARY_DIRS]
    numa_nodes = Path(_NUMA_DIR)
    node_files = sorted(numa_nodes.glob("node[0-9]*/cpulist")) if numa_nodes.is_dir() else []
    files = [
        *map(Path, (*_DEVICES_READ, *_KERNEL_FILES, *_NAME_FILES)),
        *_cgroup_v2_files(),
        *node_files,
        *_python_files(),
    ]
    return Rules(
        read_trees=_existing([*_python_trees(), *library_dirs, *map(Path, _ZONE_DATA)]),
        read_files=_existing(files),
        read_write_files=_existing([Path(path) for path in _DEVICES_READ_WRITE]),
        listable_dirs=_existing([numa_nodes]),
        write_trees=(data_dir.resolve(),),
        bind_port=port,
    )


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),  # ABI 4
        ("scoped", ctypes.c_uint64),  # ABI 6
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPortAttr(ctypes.Structure):
    _fields_ = [("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64)]


def landlock_abi() -> int:
    """Return the kernel's Landlock ABI version, or 0 where it is missing."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"):
        return 0
    libc = ctypes.CDLL(None, use_errno=True)
    version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return max(0, int(version))


def _handled_fs(abi: int) -> int:
    return _ALL_V1 | (_REFER if abi >= 2 else 0) | (_TRUNCATE if abi >= 3 else 0) | (_IOCTL_DEV if abi >= 5 else 0)


def _add_path_rule(libc: ctypes.CDLL, ruleset: int, path: Path, access: int) -> None:
    fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if not path.is_dir():
            access &= _FILE_RIGHTS  # the kernel refuses directory rights on a file
        rule = _PathBeneathAttr(access, fd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule({path})")
    finally:
        os.close(fd)


def _add_port_rule(libc: ctypes.CDLL, ruleset: int, port: int) -> None:
    rule = _NetPortAttr(_NET_BIND_TCP, port)
    if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
        raise OSError(ctypes.get_errno(), f"landlock_add_rule(tcp port {port})")


def confine(rules: Rules, enabled: bool = True) -> int:
    """Restrict this process and its future threads to ``rules``.

    Call it before any thread starts (a thread that exists already keeps its access) and
    after every descriptor that must stay out of reach is closed (open descriptors keep
    their access).

    Returns:
        The Landlock ABI the kernel enforces the rules with; 0 when the process runs
        unconfined (disabled, or no Landlock on this kernel).
    """
    abi = landlock_abi() if enabled else 0
    if abi == 0:
        if enabled:
            logger.warning("Landlock is unavailable on this kernel: the warehouse runs without file confinement")
        return 0
    handled = _handled_fs(abi)
    read = _READ_FILE | _READ_DIR
    write = handled & ~_EXECUTE
    attr = _RulesetAttr(
        handled,
        (_NET_BIND_TCP | _NET_CONNECT_TCP) if abi >= NETWORK_ABI else 0,
        (_SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    libc = ctypes.CDLL(None, use_errno=True)
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        grants = [
            *((path, read) for path in rules.read_trees),
            *((path, _READ_FILE) for path in rules.read_files),
            *((path, _READ_FILE | _WRITE_FILE) for path in rules.read_write_files),
            *((path, _READ_DIR) for path in rules.listable_dirs),
        ]
        for path, access in grants:
            _add_path_rule(libc, ruleset, path, access)
        for path in rules.write_trees:
            path.mkdir(parents=True, exist_ok=True)
            _add_path_rule(libc, ruleset, path, write)
        if abi >= NETWORK_ABI and rules.bind_port is not None:
            _add_port_rule(libc, ruleset, rules.bind_port)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
    if abi < NETWORK_ABI:
        logger.warning(
            "Landlock ABI %d (below %d): files are confined but the network is not; url(), remote() and s3() "
            "are kept from the analyst by the policy alone",
            abi,
            NETWORK_ABI,
        )
    logger.info(
        "warehouse confined by Landlock ABI %d: writes only under %s, binds only port %s",
        abi,
        ", ".join(map(str, rules.write_trees)),
        rules.bind_port,
    )
    return abi
