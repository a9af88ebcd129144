"""Settings whose key changed: the old key still works for one release, with a warning.

Each entry maps an old dotted key to its new one. The environment variable of a key is
``TICKWAVE_`` and its parts joined by ``_``, upper case, so the table renames both the
``tickwave.toml`` key and the variable. A source holding both the old and the new name
takes the new one and warns that the old one is ignored: a child process inherits the
parent's environment and also receives the resolved value under the new name.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

RENAMED: dict[str, str] = {
    "ingest.max_future_ms": "ingest.max_source_clock_lead_ms",
    "streams.max_future_ms": "streams.max_tick_lead_ms",
    "orchestration.reports_due_utc": "orchestration.late_reports_sensor_utc",
    "dashboards.report_due_utc": "dashboards.missing_report_alert_utc",
}


class DeprecatedSettingWarning(FutureWarning):
    """An old setting name was used; the message names the one to use instead.

    A ``FutureWarning``, not a ``DeprecationWarning``: Python shows it by default, and
    the reader is the operator who wrote the configuration, not a developer.
    """


def warn_renamed(old: str, new: str, *, is_ignored: bool) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (and, when both are set, ignored)."""
    if is_ignored:
        message = f"{old} is deprecated and ignored: {new} is also set and wins; remove {old}"
    else:
        message = f"{old} is deprecated: use {new} (the old name is accepted for one release)"
    warnings.warn(message, DeprecatedSettingWarning, stacklevel=3)


def _pop(data: dict[str, Any], path: list[str]) -> tuple[bool, Any]:
    node: Any = data
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict) or path[-1] not in node:
        return False, None
    return True, node.pop(path[-1])


def _contains(data: dict[str, Any], path: list[str]) -> bool:
    node: Any = data
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def _put(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return  # the section is not a table: its own validation error says so
        node = child
    node[path[-1]] = value


def move_renamed(data: dict[str, Any], name: Callable[[str], str]) -> dict[str, Any]:
    """Move each old key found in ``data`` (one source's nested values) to its new key, warning.

    Args:
        data: the values one source read, nested by section; changed in place.
        name: how the warning names a dotted key in this source (a variable, a TOML key).

    Returns:
        ``data``.
    """
    for old, new in RENAMED.items():
        found, value = _pop(data, old.split("."))
        if not found:
            continue
        is_ignored = _contains(data, new.split("."))
        warn_renamed(name(old), name(new), is_ignored=is_ignored)
        if not is_ignored:
            _put(data, new.split("."), value)
    return data
