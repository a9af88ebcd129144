"""``tickwave dashboards push``: put the folder, the datasource, the boards and the alerting into a Grafana.

Through ``grafana-client``, Grafana's documented HTTP API:

| step | calls | when it changes something |
|---|---|---|
| folder | ``GET /api/folders/:uid``, ``POST /api/folders`` | missing |
| datasource | ``GET /api/datasources/uid/:uid``, ``POST /api/datasources`` | missing (an existing one is left as is) |
| boards | ``GET /api/dashboards/uid/:uid``, ``POST /api/dashboards/db`` | content differs; sent with the version read, so a board changed meanwhile in Grafana is refused (412) unless ``force`` |
| alert rules | ``GET``/``POST``/``PUT /api/v1/provisioning/alert-rules[/:uid]`` | missing or different |
| contact point | ``GET``/``POST``/``PUT /api/v1/provisioning/contact-points`` | ``dashboards.webhook_url`` set, and missing or different |

The datasource's password is the analyst's: from the environment variable named by
``dashboards.password_env`` if set, else Tickwave's configured (or generated) one. It goes
to Grafana (which stores it encrypted) and is never printed or written.
"""

# ruff: noqa: E501 - the docstring's table is kept whole

from __future__ import annotations

import enum
import os
from dataclasses import dataclass, field
from typing import Any

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from adapters.warehouse.credentials import resolve_credentials
from dashboards.board import dashboard_json
from dashboards.build import boards
from dashboards.dataquery import DATASOURCE_UID, PLUGIN_TYPE
from dashboards.provisioning import (
    CONTACT_POINT,
    FOLDER_UID,
    RULE_GROUP,
    alert_rules_document,
    contact_points_document,
    datasource_document,
)
from tickwave.config import Settings
from tickwave.errors import TickwaveError

MESSAGE = "tickwave dashboards push"
# Fields Grafana adds to a stored dashboard that the generated one does not carry.
_SERVER_FIELDS = ("id", "version")


class ExitCode(enum.IntEnum):
    """``tickwave dashboards push`` exit codes."""

    OK = 0
    REFUSED = 1
    CONFIGURATION = 2
    AUTHENTICATION = 3
    UNREACHABLE = 4


class PushError(TickwaveError):
    """Grafana could not be updated; ``exit_code`` says why."""

    def __init__(self, message: str, exit_code: ExitCode) -> None:
        """Keep the message and the exit code."""
        super().__init__(message)
        self.exit_code = exit_code


@dataclass
class PushReport:
    """What ``push`` did, one line per object: ``(kind, name, action)``."""

    changes: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, kind: str, name: str, action: str) -> None:
        """Record one outcome (created, updated, unchanged, exists)."""
        self.changes.append((kind, name, action))

    @property
    def changed(self) -> int:
        """How many objects were created or updated."""
        return sum(1 for _, _, action in self.changes if action.startswith(("created", "updated")))


def _missing(error: GrafanaException) -> bool:
    return bool(error.status_code == 404)


def _get(call: Any, *args: Any) -> Any:
    # A GET that may find nothing: None on 404, the object otherwise.
    try:
        return call(*args)
    except GrafanaClientError as error:
        if _missing(error):
            return None
        raise


def _analyst_password(settings: Settings) -> str:
    from_environment = os.environ.get(settings.dashboards.password_env)
    if from_environment:
        return from_environment
    return resolve_credentials(settings).analyst_password.get_secret_value()


def _folder(api: GrafanaApi, settings: Settings, report: PushReport) -> None:
    title = settings.dashboards.folder
    if _get(api.folder.get_folder, FOLDER_UID) is None:
        api.folder.create_folder(title, uid=FOLDER_UID)
        report.add("folder", title, "created")
    else:
        report.add("folder", title, "exists")


def _datasource(api: GrafanaApi, settings: Settings, report: PushReport) -> None:
    document, metrics = datasource_document(settings)["datasources"]
    if _get(api.datasource.get_datasource_by_uid, metrics["uid"]) is None:
        api.datasource.create_datasource({key: value for key, value in metrics.items() if key != "editable"})
        report.add("datasource", metrics["name"], "created")
    else:
        report.add("datasource", metrics["name"], "exists (left as is)")
    if _get(api.datasource.get_datasource_by_uid, DATASOURCE_UID) is not None:
        report.add("datasource", document["name"], "exists (left as is)")
        return
    api.datasource.create_datasource(
        {
            "name": document["name"],
            "uid": DATASOURCE_UID,
            "type": PLUGIN_TYPE,
            "access": "proxy",
            "jsonData": document["jsonData"],
            "secureJsonData": {**document["secureJsonData"], "password": _analyst_password(settings)},
        }
    )
    report.add("datasource", document["name"], "created")


def _comparable(board: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in board.items() if key not in _SERVER_FIELDS}


def _boards(api: GrafanaApi, settings: Settings, report: PushReport, force: bool) -> None:
    for board in boards(settings):
        ours = dashboard_json(board)
        stored = _get(api.dashboard.get_dashboard, board.uid)
        version = None
        if stored is not None:
            if _comparable(stored.get("dashboard", {})) == _comparable(ours):
                report.add("dashboard", board.title, "unchanged")
                continue
            version = stored.get("dashboard", {}).get("version")
        payload = {**ours, "id": None}
        if version is not None:
            payload["version"] = version
        try:
            answer = api.dashboard.update_dashboard(
                {"dashboard": payload, "folderUid": FOLDER_UID, "overwrite": force, "message": MESSAGE}
            )
        except GrafanaClientError as error:
            if error.status_code == 412:
                raise PushError(
                    f"dashboard {board.uid}: changed in Grafana meanwhile ({error.message}); "
                    "review it there, then push again, or push with --force to overwrite",
                    ExitCode.REFUSED,
                ) from error
            raise
        new_version = answer.get("version")
        action = "created" if stored is None else f"updated (version {version} -> {new_version})"
        report.add("dashboard", board.title, action)


def _rule_payload(rule: dict[str, Any], settings: Settings) -> dict[str, Any]:
    return {**rule, "folderUID": FOLDER_UID, "ruleGroup": RULE_GROUP, "orgID": 1}


def _same(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(stored.get(key) == value for key, value in wanted.items())


def _alerting(api: GrafanaApi, settings: Settings, report: PushReport) -> None:
    [group] = alert_rules_document(settings)["groups"]
    for rule in group["rules"]:
        wanted = _rule_payload(rule, settings)
        stored = _get(api.alertingprovisioning.get_alertrule, rule["uid"])
        if stored is None:
            api.alertingprovisioning.create_alertrule(wanted)
            report.add("alert rule", rule["title"], "created")
        elif _same(stored, wanted):
            report.add("alert rule", rule["title"], "unchanged")
        else:
            api.alertingprovisioning.update_alertrule(rule["uid"], wanted)
            report.add("alert rule", rule["title"], "updated")
    if not settings.dashboards.webhook_url:
        return
    [point] = contact_points_document(settings.dashboards.webhook_url)["contactPoints"]
    [receiver] = point["receivers"]
    wanted = {"uid": receiver["uid"], "name": point["name"], "type": receiver["type"], "settings": receiver["settings"]}
    existing = [
        item
        for item in api.alertingprovisioning.get_contactpoints(CONTACT_POINT) or []
        if item.get("uid") == receiver["uid"]
    ]
    if not existing:
        api.alertingprovisioning.create_contactpoint(wanted)
        report.add("contact point", point["name"], "created")
    elif _same(existing[0], wanted):
        report.add("contact point", point["name"], "unchanged")
    else:
        api.alertingprovisioning.update_contactpoint(receiver["uid"], wanted)
        report.add("contact point", point["name"], "updated")


def push(
    settings: Settings, url: str, token: str | None = None, basic: tuple[str, str] | None = None, force: bool = False
) -> PushReport:
    """Create or update everything in the Grafana at ``url``; return what changed.

    Raises:
        PushError: authentication failed, Grafana unreachable, or it refused a change.
    """
    credential: str | tuple[str, str] | None = token or basic
    api = GrafanaApi.from_url(url, credential=credential, timeout=10.0)
    report = PushReport()
    try:
        _folder(api, settings, report)
        _datasource(api, settings, report)
        _boards(api, settings, report, force)
        _alerting(api, settings, report)
    except GrafanaUnauthorizedError as error:
        raise PushError(
            f"{url}: authentication failed (401): check --token or --user", ExitCode.AUTHENTICATION
        ) from error
    except GrafanaClientError as error:
        if error.status_code == 403:
            raise PushError(f"{url}: permission denied (403): {error.message}", ExitCode.AUTHENTICATION) from error
        raise PushError(f"{url}: Grafana refused: {error.message}", ExitCode.REFUSED) from error
    except GrafanaException as error:
        if error.status_code == 0:
            raise PushError(f"{url}: Grafana unreachable: {error.message}", ExitCode.UNREACHABLE) from error
        raise PushError(f"{url}: Grafana failed: {error.message}", ExitCode.REFUSED) from error
    except niquests.exceptions.RequestException as error:
        raise PushError(f"{url}: Grafana unreachable: {error}", ExitCode.UNREACHABLE) from error
    return report
