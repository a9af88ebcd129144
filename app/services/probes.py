"""What ``tickwave status`` says about each running service's health, beyond its pid.

Kafka and the warehouse are asked over their own protocols (a metadata request,
``/ping``), Dagster over ``/server_info``; Tickwave's own processes (the dataflow, the
execution process, the audit loader) are read from the health file each writes itself
(``adapters.health``): ``ok``, ``degraded`` with the problems it names, or ``stalled``
when it stopped reporting.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from adapters.health import read_health
from app.services.supervisor import ManagedService
from tickwave.config import Settings

SELF_REPORTING = frozenset({"streams", "execution", "audit", "supervisor"})


@dataclass(frozen=True)
class Health:
    """A service's health as shown: ``ok``, ``degraded`` or ``stalled``, and a one-line summary."""

    state: str
    summary: str

    @property
    def is_ok(self) -> bool:
        """Return True for a healthy service."""
        return self.state == "ok"


def health_of(settings: Settings, service: ManagedService, address: str) -> Health:
    """Return the health of ``service`` running at ``address``."""
    if service.name in SELF_REPORTING:
        return _reported(settings, service.name)
    if service.name == "orchestration":
        return _http(f"{address.rstrip('/')}/server_info", "Dagster /server_info")
    return Health("ok", "answering") if service.probe(address) else Health("degraded", "not answering")


def _http(url: str, what: str) -> Health:
    try:
        with urllib.request.urlopen(url, timeout=3.0) as response:  # noqa: S310 - an http:// URL we built
            return (
                Health("ok", f"{what} answers")
                if response.status == 200
                else Health("degraded", f"{what} {response.status}")
            )
    except (urllib.error.URLError, OSError) as exc:
        return Health("degraded", f"{what} does not answer ({exc})")


def _reported(settings: Settings, name: str) -> Health:
    report = read_health(settings.state_path, name)
    if report is None:
        return Health("stalled", "no health report yet")
    if report.is_stale():
        return Health("stalled", f"last health report {report.age_s():.0f} s ago")
    detail = dict(report.detail)
    if dead := _dead_bus_addresses(settings, name, detail):
        return Health("degraded", "; ".join(dead))
    if name == "audit":
        detail["cursor_lag"] = _audit_lag(settings)
    progress = _progress(name, detail)
    if report.problems:
        return Health("degraded", "; ".join(report.problems) + (f" ({progress})" if progress else ""))
    return Health("ok", progress)


def _dead_bus_addresses(settings: Settings, name: str, detail: dict[str, Any]) -> list[str]:
    """Name each of the service's processes (a flow's loader too) whose broker address the broker left."""
    from adapters.bus import broker_moved

    users = {name: detail.get("bus_address")}
    if isinstance(detail.get("loader"), dict):
        users["its streams loader"] = detail["loader"].get("bus_address")
    dead = []
    for who, address in users.items():
        if isinstance(address, str) and (now := broker_moved(settings, address)) is not None:
            dead.append(f"{who} uses the broker at {address}, a dead address: the broker listens at {now}")
    return dead


def _audit_lag(settings: Settings) -> dict[str, int | None] | str:
    """The audit loader's consumer-group lag on ``orders.events``, asked of the broker now."""
    from adapters.bus import resolve_admin
    from adapters.health import group_lag
    from tickwave.topics import ORDERS_EVENTS, topic_name

    try:
        group = f"{settings.execution.consumer_group}-audit"
        return group_lag(resolve_admin(settings), group, topic_name(settings, ORDERS_EVENTS))
    except Exception as exc:  # the broker may be restarting: say so, never fail `status`
        return f"unknown ({exc.__class__.__name__})"


def pipeline_lags(settings: Settings) -> dict[str, int | None]:
    """Messages each stage has still to take in, from the dataflow to the warehouse (None: unknown).

    ``dataflow``: ticks behind the topic's end (its health report); ``streams loader``,
    ``execution`` and ``audit loader``: their consumer groups' lag on ``streams.records``,
    ``signals`` and ``orders.events``. The loaders commit only what the warehouse holds, so
    all four at 0, twice in a row, means every row produced so far is stored.
    """
    from confluent_kafka import KafkaException

    from adapters.bus import resolve_admin
    from adapters.health import group_lag
    from tickwave.topics import ORDERS_EVENTS, SIGNALS, STREAMS_RECORDS, topic_name

    lags: dict[str, int | None] = {"dataflow": _dataflow_lag(settings)}
    groups = {
        "streams loader": (f"{settings.kafka.topic_prefix}tickwave-streams-loader", STREAMS_RECORDS),
        "execution": (settings.execution.consumer_group, SIGNALS),
        "audit loader": (f"{settings.execution.consumer_group}-audit", ORDERS_EVENTS),
    }
    bootstrap = resolve_admin(settings)
    for stage, (group, topic) in groups.items():
        try:
            partitions = group_lag(bootstrap, group, topic_name(settings, topic))
        except (KafkaException, KeyError):  # the broker restarting, the topic not there: unknown, not drained
            lags[stage] = None
            continue
        known = [lag for lag in partitions.values() if lag is not None]
        lags[stage] = sum(known) if known and len(known) == len(partitions) else None
    return lags


def _dataflow_lag(settings: Settings) -> int | None:
    report = read_health(settings.state_path, "streams")
    if report is None or report.is_stale():
        return None
    lags = [progress.get("lag") for progress in (report.detail.get("partitions") or {}).values()]
    return sum(lags) if lags and all(isinstance(lag, int) for lag in lags) else None


def _ago(unix_s: float | None) -> str:
    return "never" if unix_s is None else f"{max(0.0, time.time() - unix_s):.0f} s ago"


def _progress(name: str, detail: dict[str, Any]) -> str:
    """One line of the figures each service reports."""
    if name == "streams":
        epoch = detail.get("last_epoch") or {}
        lags = {partition: progress.get("lag") for partition, progress in (detail.get("partitions") or {}).items()}
        loader = detail.get("loader") or {}
        return (
            f"epoch {epoch.get('epoch', '-')}, lag per partition {lags or '-'}, loader "
            f"{loader.get('rows_loaded', 0)} rows, last insert {_ago(loader.get('last_insert_at'))}"
        )
    if name == "execution":
        decided = detail.get("last_signal_decided_at_ms")
        return (
            f"last signal {detail.get('last_signal_id') or '-'} "
            f"({_ago(decided / 1000 if decided else None)}), journal at {detail.get('journal_position')}, "
            f"{detail.get('broker')} {'connected' if detail.get('is_broker_connected') else 'NOT connected'}, "
            f"{detail.get('trading_state')}"
        )
    if name == "audit":
        return f"cursor lag {detail.get('cursor_lag', 'unknown')}"
    if name == "supervisor":
        restarted = {service: count for service, count in (detail.get("restarts") or {}).items() if count}
        return f"restarts {restarted or 'none'}; gave up on {', '.join(detail.get('gave_up') or []) or 'none'}"
    return ""
