"""Each schedule's and sensor's state, last tick and next tick, read from a Dagster webserver's GraphQL API.

GraphQL answers the same on the embedded Dagster (``tickwave orchestrate``) and on any other
webserver serving these definitions, and it reads the instance's stored state (a toggle set
in the UI included), so ``tickwave status`` shows what the daemon will do. One request over
plain HTTP: no Dagster import on the status path.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

QUERY = """
{ repositoriesOrError { __typename
    ... on RepositoryConnection { nodes {
      schedules { name cronSchedule executionTimezone
        scheduleState { status ticks(limit: 1) { timestamp status } }
        futureTicks(limit: 1) { results { timestamp } } }
      sensors { name minIntervalSeconds
        sensorState { status ticks(limit: 1) { timestamp status } nextTick { timestamp } } } } }
    ... on PythonError { message } } }
"""


@dataclass(frozen=True)
class Automation:
    """A schedule or sensor as the instance holds it."""

    name: str
    kind: str  # schedule | sensor
    status: str  # RUNNING | STOPPED
    cadence: str  # a schedule's cron and timezone; a sensor's interval
    last_tick_at: datetime | None
    last_tick_status: str | None  # SUCCESS | SKIPPED | FAILURE | STARTED
    next_tick_at: datetime | None


def automations(address: str, timeout_s: float = 10.0) -> list[Automation]:
    """Return every schedule and sensor of the Dagster webserver at ``address`` (``http://host:port``).

    Raises:
        OSError: when the webserver does not answer (``urllib.error.URLError`` included).
        ValueError: when GraphQL answers with an error.
    """
    return parse(graphql(address, QUERY, timeout_s))


def graphql(address: str, query: str, timeout_s: float) -> dict[str, Any]:
    """Return the JSON answer of the Dagster webserver at ``address`` (``[http(s)://]host:port``) to ``query``.

    Raises:
        OSError: when the webserver does not answer (``urllib.error.URLError`` included).
        ValueError: when the address is not http(s), or the answer is not JSON.
    """
    base = address if "://" in address else f"http://{address}"
    if urlsplit(base).scheme not in ("http", "https"):
        raise ValueError(f"Dagster's address must be http(s)://host:port, not {address!r}")
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        f"{base.rstrip('/')}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - http(s) only
        return dict(json.loads(response.read()))


def parse(answer: dict[str, Any]) -> list[Automation]:
    """Turn the GraphQL answer into automations, schedules first, each kind by name.

    Raises:
        ValueError: when the answer holds errors instead of repositories.
    """
    result = (answer.get("data") or {}).get("repositoriesOrError") or {}
    if answer.get("errors") or result.get("__typename") != "RepositoryConnection":
        raise ValueError(f"Dagster GraphQL: {answer.get('errors') or result.get('message') or answer}")
    found = []
    for repository in result["nodes"]:
        for schedule in repository["schedules"]:
            state = schedule["scheduleState"]
            future = schedule["futureTicks"]["results"]
            found.append(
                Automation(
                    schedule["name"],
                    "schedule",
                    state["status"],
                    f"{schedule['cronSchedule']} {schedule['executionTimezone'] or 'UTC'}",
                    *_last(state["ticks"]),
                    _at(future[0]["timestamp"]) if future else None,
                )
            )
        for sensor in repository["sensors"]:
            state = sensor["sensorState"]
            found.append(
                Automation(
                    sensor["name"],
                    "sensor",
                    state["status"],
                    f"every {sensor['minIntervalSeconds']} s",
                    *_last(state["ticks"]),
                    _at((state["nextTick"] or {}).get("timestamp")),
                )
            )
    return sorted(found, key=lambda item: (item.kind != "schedule", item.name))


def _last(ticks: list[dict[str, Any]]) -> tuple[datetime | None, str | None]:
    return (_at(ticks[0]["timestamp"]), ticks[0]["status"]) if ticks else (None, None)


def _at(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
