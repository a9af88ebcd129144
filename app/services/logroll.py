"""Service logs that stop growing: each ``logs/<name>.log`` rolled by size, a few generations kept.

A service writes its log through the descriptor the supervisor opened for it in append mode
(``O_APPEND``): every write lands at the file's current end. So a log is rolled the way
logrotate's ``copytruncate`` does, without restarting the service: its bytes are copied to
``<name>.log.1`` (older generations shifted up to ``.N``, the oldest dropped) and the file is
truncated to nothing, where the service's next line starts. What was written while the copy
was made is copied after it; a line written between that last read and the truncation
(microseconds) is lost, the price of not restarting a service to roll its log.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import BinaryIO

from tickwave.config.retention import SERVICE_LOG_GENERATIONS

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20


def roll(path: Path, max_bytes: int, generations: int = SERVICE_LOG_GENERATIONS) -> bool:
    """Roll ``path`` once it holds ``max_bytes`` or more; return True when it was rolled.

    The copy is made under a temporary name first: a copy that fails (a full disk) leaves the
    log and its generations as they were, and raises.
    """
    try:
        if path.stat().st_size < max_bytes:
            return False
    except FileNotFoundError:
        return False
    generation = [path.with_name(f"{path.name}.{index}") for index in range(generations + 1)]
    partial = path.with_name(f"{path.name}.rolling")
    try:
        with path.open("r+b") as source, partial.open("wb") as copy:
            _copy_to_end(source, copy)
            for index in range(generations, 1, -1):
                if generation[index - 1].exists():
                    os.replace(generation[index - 1], generation[index])
            os.replace(partial, generation[1])
            _copy_to_end(source, copy)  # what was written meanwhile
            copy.flush()
            os.ftruncate(source.fileno(), 0)
    except OSError:
        partial.unlink(missing_ok=True)
        raise
    return True


def _copy_to_end(source: BinaryIO, copy: BinaryIO) -> None:
    while chunk := source.read(_CHUNK):
        copy.write(chunk)


def roll_logs(logs_dir: Path, max_bytes: int) -> list[str]:
    """Roll every ``*.log`` of ``logs_dir`` that reached ``max_bytes``; return the names rolled.

    A log that cannot be rolled now (a full disk) is logged and left for the next round.
    """
    rolled = []
    for path in sorted(logs_dir.glob("*.log")):
        try:
            if roll(path, max_bytes):
                rolled.append(path.name)
                logger.info("log %s reached %d MB: rolled to %s.1", path.name, max_bytes >> 20, path.name)
        except OSError as exc:
            logger.warning("log %s could not be rolled (%s); trying again next round", path.name, exc)
    return rolled
