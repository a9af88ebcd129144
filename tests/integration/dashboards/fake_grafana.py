"""A FAKE Grafana HTTP API: only the documented endpoints ``tickwave dashboards push`` calls.

No Grafana server can be installed on these machines, so this stands in for one, following
Grafana's HTTP API documentation (Folder, Data source, Dashboard and Alerting provisioning
APIs) for paths, bodies, status codes, authentication and the dashboard version check:

- every request needs ``Authorization: Bearer <token>`` or basic auth, else 401;
- ``GET /api/folders/:uid`` 200 / 404; ``POST /api/folders`` 200, 409 when the uid exists, 400 without title;
- ``GET /api/datasources/uid/:uid`` 200 / 404; ``POST /api/datasources`` 200, 409 when the name exists;
  the password in ``secureJsonData`` is kept apart and only flagged in ``secureJsonFields``;
- ``GET /api/dashboards/uid/:uid`` 200 ``{dashboard, meta}`` / 404; ``POST /api/dashboards/db`` 200
  ``{id, uid, url, status, version, slug}``; 412 ``version-mismatch`` when the sent version is not the
  stored one and ``overwrite`` is false; 412 ``name-exists`` for another uid with the same title in the
  folder; 400 for an unknown ``folderUid``;
- ``GET /api/v1/provisioning/alert-rules/:uid`` 200 / 404; ``POST`` 201, 400 for an unknown folder,
  409 when the uid exists; ``PUT /api/v1/provisioning/alert-rules/:uid`` 200 / 404;
- ``GET /api/v1/provisioning/contact-points[?name=]`` 200 list; ``POST`` 202; ``PUT /:uid`` 202 / 404.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GrafanaState:
    """What the fake holds, for tests to inspect (and to play a concurrent editor)."""

    token: str = "fake-token"
    basic: tuple[str, str] = ("admin", "fake-password")
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasource_passwords: dict[str, str] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    alert_rules: dict[str, dict[str, Any]] = field(default_factory=dict)
    contact_points: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    # uid of a dashboard someone else saves right after push reads it (a concurrent edit)
    edit_after_read: str | None = None
    next_id: int = 1

    def new_id(self) -> int:
        """An increasing numeric id, as Grafana assigns."""
        self.next_id += 1
        return self.next_id


class _Handler(BaseHTTPRequestHandler):
    state: GrafanaState
    lock: threading.Lock

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _send(self, status: int, body: Any = None) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if header == f"Bearer {self.state.token}":
            return True
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            return (user, password) == self.state.basic
        return False

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def _route(self, method: str) -> None:
        self.state.requests.append((method, self.path))
        if not self._authorized():
            self._send(401, {"message": "Unauthorized"})
            return
        path = self.path.split("?", 1)[0]
        with self.lock:
            for pattern, handler in ROUTES.get(method, ()):
                match = re.fullmatch(pattern, path)
                if match:
                    status, body = handler(
                        self.state,
                        self._body() if method in ("POST", "PUT") else None,
                        *match.groups(),
                        query=self.path,
                    )
                    self._send(status, body)
                    return
        self._send(404, {"message": "Not found"})

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_PUT(self) -> None:
        self._route("PUT")


def _get_folder(state: GrafanaState, body: Any, uid: str, query: str) -> tuple[int, Any]:
    folder = state.folders.get(uid)
    return (200, folder) if folder else (404, {"message": "folder not found"})


def _create_folder(state: GrafanaState, body: Any, query: str) -> tuple[int, Any]:
    if not body or not body.get("title"):
        return 400, {"message": "folder title cannot be empty"}
    uid = body.get("uid") or f"f{state.new_id()}"
    if uid in state.folders:
        return 409, {"message": "a folder with the same uid already exists"}
    folder = {"id": state.new_id(), "uid": uid, "title": body["title"], "url": f"/dashboards/f/{uid}/", "version": 1}
    state.folders[uid] = folder
    return 200, folder


def _get_datasource(state: GrafanaState, body: Any, uid: str, query: str) -> tuple[int, Any]:
    source = state.datasources.get(uid)
    return (200, source) if source else (404, {"message": "Data source not found"})


def _create_datasource(state: GrafanaState, body: Any, query: str) -> tuple[int, Any]:
    if any(source["name"] == body.get("name") for source in state.datasources.values()):
        return 409, {"message": "data source with the same name already exists"}
    secure = body.pop("secureJsonData", {}) or {}
    uid = body.get("uid") or f"d{state.new_id()}"
    source = {**body, "id": state.new_id(), "uid": uid, "secureJsonFields": {key: True for key in secure}}
    state.datasources[uid] = source
    if "password" in secure:
        state.datasource_passwords[uid] = secure["password"]
    return 200, {"datasource": source, "id": source["id"], "message": "Datasource added", "name": source["name"]}


def _get_dashboard(state: GrafanaState, body: Any, uid: str, query: str) -> tuple[int, Any]:
    stored = state.dashboards.get(uid)
    if stored is None:
        return 404, {"message": "Dashboard not found"}
    answer = json.loads(json.dumps(stored))
    if state.edit_after_read == uid:  # someone else saves it right after this read
        stored["dashboard"]["version"] += 1
        state.edit_after_read = None
    return 200, answer


def _save_dashboard(state: GrafanaState, body: Any, query: str) -> tuple[int, Any]:
    dashboard = dict(body.get("dashboard") or {})
    uid, folder_uid = dashboard.get("uid"), body.get("folderUid", "")
    if not uid or not dashboard.get("title"):
        return 400, {"message": "Dashboard title cannot be empty"}
    if folder_uid and folder_uid not in state.folders:
        return 400, {"message": "folder not found"}
    stored = state.dashboards.get(uid)
    for other_uid, other in state.dashboards.items():
        same_place = other["meta"]["folderUid"] == folder_uid and other["dashboard"]["title"] == dashboard["title"]
        if other_uid != uid and same_place and not body.get("overwrite"):
            return 412, {
                "status": "name-exists",
                "message": "A dashboard with the same name in the folder already exists",
            }
    if stored is not None and not body.get("overwrite") and dashboard.get("version") != stored["dashboard"]["version"]:
        return 412, {"status": "version-mismatch", "message": "The dashboard has been changed by someone else"}
    version = stored["dashboard"]["version"] + 1 if stored else 1
    dashboard_id = stored["dashboard"]["id"] if stored else state.new_id()
    dashboard.update(id=dashboard_id, version=version)
    state.dashboards[uid] = {"dashboard": dashboard, "meta": {"folderUid": folder_uid, "message": body.get("message")}}
    return 200, {
        "id": dashboard_id,
        "uid": uid,
        "url": f"/d/{uid}/x",
        "status": "success",
        "version": version,
        "slug": "x",
    }


def _get_rule(state: GrafanaState, body: Any, uid: str, query: str) -> tuple[int, Any]:
    rule = state.alert_rules.get(uid)
    return (200, rule) if rule else (404, None)


def _create_rule(state: GrafanaState, body: Any, query: str) -> tuple[int, Any]:
    if body.get("folderUID") not in state.folders:
        return 400, {"message": "invalid alert rule: folder does not exist"}
    if not body.get("title") or not body.get("data") or not body.get("condition"):
        return 400, {"message": "invalid alert rule: title, condition and data are required"}
    uid = body.get("uid") or f"r{state.new_id()}"
    if uid in state.alert_rules:
        return 409, {"message": "an alert rule with this uid already exists"}
    state.alert_rules[uid] = {**body, "uid": uid, "id": state.new_id(), "provenance": "api"}
    return 201, state.alert_rules[uid]


def _update_rule(state: GrafanaState, body: Any, uid: str, query: str) -> tuple[int, Any]:
    if uid not in state.alert_rules:
        return 404, None
    state.alert_rules[uid] = {**body, "uid": uid, "id": state.alert_rules[uid]["id"], "provenance": "api"}
    return 200, state.alert_rules[uid]


def _list_contact_points(state: GrafanaState, body: Any, query: str) -> tuple[int, Any]:
    name = re.search(r"[?&]name=([^&]*)", query)
    points = [point for point in state.contact_points.values() if not name or point["name"] == name.group(1)]
    return 200, points


def _create_contact_point(state: GrafanaState, body: Any, query: str) -> tuple[int, Any]:
    uid = body.get("uid") or f"c{state.new_id()}"
    state.contact_points[uid] = {**body, "uid": uid}
    return 202, state.contact_points[uid]


def _update_contact_point(state: GrafanaState, body: Any, uid: str, query: str) -> tuple[int, Any]:
    if uid not in state.contact_points:
        return 404, {"message": "contact point not found"}
    state.contact_points[uid] = {**body, "uid": uid}
    return 202, state.contact_points[uid]


ROUTES: dict[str, list[tuple[str, Any]]] = {
    "GET": [
        (r"/api/folders/([^/]+)", _get_folder),
        (r"/api/datasources/uid/([^/]+)", _get_datasource),
        (r"/api/dashboards/uid/([^/]+)", _get_dashboard),
        (r"/api/v1/provisioning/alert-rules/([^/]+)", _get_rule),
        (r"/api/v1/provisioning/contact-points", _list_contact_points),
    ],
    "POST": [
        (r"/api/folders", _create_folder),
        (r"/api/datasources", _create_datasource),
        (r"/api/dashboards/db", _save_dashboard),
        (r"/api/v1/provisioning/alert-rules", _create_rule),
        (r"/api/v1/provisioning/contact-points", _create_contact_point),
    ],
    "PUT": [
        (r"/api/v1/provisioning/alert-rules/([^/]+)", _update_rule),
        (r"/api/v1/provisioning/contact-points/([^/]+)", _update_contact_point),
    ],
}


class FakeGrafana:
    """The fake on a free 127.0.0.1 port, in a thread; ``stop()`` shuts it down."""

    def __init__(self) -> None:
        """Start serving."""
        self.state = GrafanaState()
        handler = type("Handler", (_Handler,), {"state": self.state, "lock": threading.Lock()})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
