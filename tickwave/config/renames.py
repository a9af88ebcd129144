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
    "execution.allowed_symbols": "execution.risk.allowed_symbols",
    "execution.daily_loss_action": "execution.risk.daily_loss_action",
    "execution.max_position_lots": "execution.risk.max_position_lots",
    "execution.max_order_lots": "execution.risk.max_order_lots",
    "execution.lot_step": "execution.risk.lot_step",
    "execution.min_strength": "execution.risk.min_strength",
    "execution.max_gross_exposure": "execution.risk.max_gross_exposure",
    "execution.signal_ttl_ms": "execution.risk.signal_ttl_ms",
    "execution.signal_timeframe": "execution.risk.signal_timeframe",
    "execution.signal_timeframes": "execution.risk.signal_timeframes",
    "execution.max_tick_age_ms": "execution.risk.max_tick_age_ms",
    "execution.price_collar_bps": "execution.risk.price_collar_bps",
    "execution.max_orders_per_second": "execution.risk.max_orders_per_second",
    "execution.daily_loss_limit": "execution.risk.daily_loss_limit",
    "execution.max_consecutive_rejects": "execution.risk.max_consecutive_rejects",
    "execution.flash_crash_pct": "execution.risk.flash_crash_pct",
    "execution.flash_crash_window_ms": "execution.risk.flash_crash_window_ms",
    "execution.stop_loss_pips": "execution.risk.stop_loss_pips",
    "execution.take_profit_pips": "execution.risk.take_profit_pips",
    "execution.stop_pips_by_symbol": "execution.risk.stop_pips_by_symbol",
    "execution.paper_slippage_bps": "execution.paper_broker.slippage_bps",
    "execution.paper_latency_ms": "execution.paper_broker.latency_ms",
    "execution.paper_initial_cash": "execution.paper_broker.initial_cash",
    "execution.mt5_magic": "execution.mt5_broker.magic",
    "execution.mt5_deviation_points": "execution.mt5_broker.deviation_points",
    "execution.mt5_max_retries": "execution.mt5_broker.max_retries",
    "execution.mt5_server_stops": "execution.mt5_broker.server_stops",
    "execution.mt5_server_stop_extra_pips": "execution.mt5_broker.server_stop_extra_pips",
    "execution.reconcile_every_s": "execution.reconciliation.interval_s",
    "execution.reconcile_window_s": "execution.reconciliation.window_s",
    "execution.control_timeout_s": "execution.control.reply_timeout_s",
    "execution.control_max_age_s": "execution.control.max_age_s",
    "execution.market_hours": "market.hours",
    "execution.market_timezone": "market.timezone",
    "execution.rollover_time": "market.rollover_time",
    "execution.market_holidays": "market.holidays",
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
    # Attributed to the configuration, not to a line of Tickwave: the operator's file or environment is at fault.
    warnings.warn_explicit(message, DeprecatedSettingWarning, filename="tickwave configuration", lineno=0)


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


def put(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``path`` in nested ``data``; a table's value is merged over the table already there."""
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return  # the section is not a table: its own validation error says so
        node = child
    if isinstance(value, dict) and isinstance(node.get(path[-1]), dict):
        value = {**node[path[-1]], **value}  # a sub-section's variable over its section's JSON
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
            put(data, new.split("."), value)
    return data
