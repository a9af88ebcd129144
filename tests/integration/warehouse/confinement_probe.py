"""Run as ``python -m tests.integration.warehouse.confinement_probe DATA_DIR PORT ROOT...``.

Lists the paths under each ``ROOT`` (``path:depth``; depth 0 names a single path,
reported on its own) while still unconfined, confines
itself with exactly the warehouse's production rules (``warehouse_rules`` and
``confine``, the calls the server makes), then tries to open every listed path for
reading and prints, as JSON, the ABI enforced, how many paths were tried and which
opened. It also tries a TCP connection to 127.0.0.1 and a bind on a port that is not
the warehouse's. With ``PROBE_AS_LANDLOCK_ABI=N`` it confines itself as on a kernel of
that Landlock ABI (0: none). Read-only: nothing is written but into the data directory.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
from pathlib import Path

from warehouse_server.security import confinement
from warehouse_server.security.confinement import confine, warehouse_rules

MAX_PATHS_PER_ROOT = 20_000
OLDER_KERNEL_VARIABLE = "PROBE_AS_LANDLOCK_ABI"
# Device nodes whose open has an effect of its own (arms a hardware timer): never opened.
UNSAFE_DEVICES = ("watchdog",)


def _listed(root: Path, depth: int) -> list[str]:
    found = [str(root)]
    if depth == 0:
        return found
    root = Path(os.path.realpath(root))  # /proc/self: walk the process's own directory
    if not root.is_dir():
        return found
    for directory, subdirectories, files in os.walk(root, followlinks=False):
        level = len(Path(directory).relative_to(root).parts)
        for name in (*subdirectories, *files):
            found.append(os.path.join(directory, name))
        if level + 1 >= depth:
            subdirectories.clear()
        if len(found) > MAX_PATHS_PER_ROOT:
            break
    return found[:MAX_PATHS_PER_ROOT]


def _opens(path: str) -> bool:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return False
    if (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)) and Path(path).name.startswith(UNSAFE_DEVICES):
        return False
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(descriptor)
    return True


def _target(path: str) -> str | None:
    # What the kernel checked: the resolved file; None for this process's own pipes and
    # sockets reopened through /proc/self/fd (descriptors it holds, not files of the host).
    target = os.path.realpath(path)
    return target if os.path.lexists(target) else None


def _try_connect(target: tuple[str, int]) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        client.settimeout(2.0)
        try:
            client.connect(target)
        except OSError:
            return False
        return True


def _binds_elsewhere(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port + 1 if port < 65535 else port - 1))
        except OSError:
            return False
        return True


def main(arguments: list[str]) -> None:
    """Probe what the production confinement leaves open; print the findings as JSON."""
    data_dir, port = Path(arguments[0]), int(arguments[1])
    candidates: list[str] = []
    named: list[str] = []  # depth 0: a path reported on its own, opened or not
    for spec in arguments[2:]:
        root, depth = spec.rsplit(":", 1)
        candidates.extend(_listed(Path(root), int(depth)))
        if int(depth) == 0:
            named.append(root)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))  # a live target, made before confinement
        listener.listen(1)
        rules = warehouse_rules(data_dir, port)
        if OLDER_KERNEL_VARIABLE in os.environ:  # build the ruleset as a kernel of that Landlock ABI would
            older = int(os.environ[OLDER_KERNEL_VARIABLE])
            confinement.landlock_abi = lambda: older
        abi = confine(rules)
        opened = [(path, _target(path)) for path in sorted(set(candidates)) if _opens(path)]
        named_opened = {path: _opens(path) for path in named}
        connected = _try_connect(listener.getsockname())
    print(
        json.dumps(
            {
                "abi": abi,
                "rules": {key: list(map(str, value)) for key, value in vars(rules).items() if key != "bind_port"},
                "tried": len(set(candidates)),
                "named": named_opened,
                "opened": [(path, target) for path, target in opened if target is not None],
                "connected": connected,
                "bound_elsewhere": _binds_elsewhere(port),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1:])
