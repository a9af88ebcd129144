"""Who may use the warehouse, and where their passwords come from.

Two users: the read-write service user (Tickwave's own processes, dbt) and the
read-only analyst user (people, dashboards). A configured password
(``TICKWAVE_CLICKHOUSE_PASSWORD`` / ``..._ANALYST_PASSWORD`` or ``tickwave.toml``) always
wins. So that ``make demo`` works on a fresh machine without anyone typing a password,
the embedded service generates the missing ones once, at its first start, into
``<state dir>/secrets/warehouse.json`` (directory 0700, file 0600, created atomically);
the server and every client on the machine read them from there. Nothing prints them;
``tickwave warehouse credentials-path`` says where they are for tools such as Grafana.

``clickhouse.allow_no_password`` (explicit, local development only) lets a user without
a password in; without it, a user with no password is a start-up error. With an
external server (``clickhouse.url``) nothing is generated: its passwords come from the
configuration only.

The warehouse process itself never holds a password in its environment: its start
re-executes it with a scrubbed one (see :func:`warehouse_server.security.confinement.exec_scrubbed`) and hands it
the resolved passwords through a pipe, whose read end it inherits (:func:`hand_over`,
:func:`take_over`).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from tickwave.config import Settings
from tickwave.errors import ConfigurationError, ServiceError

CREDENTIALS_FD_VARIABLE = "TW_WAREHOUSE_CREDENTIALS_FD"  # outside TICKWAVE_*: not a setting
SECRETS_DIR = "secrets"
SECRETS_FILE = "warehouse.json"
_KEYS = ("password", "analyst_password")


@dataclass(frozen=True)
class Credentials:
    """The two users of the warehouse and their passwords (empty only when allowed)."""

    user: str
    password: SecretStr
    analyst_user: str
    analyst_password: SecretStr


def secrets_path(settings: Settings) -> Path:
    """Return the file holding generated passwords for this state directory."""
    return settings.state_path / SECRETS_DIR / SECRETS_FILE


def _read_generated(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON; delete it to generate new warehouse passwords") from exc
    if not isinstance(data, dict) or not all(isinstance(data.get(key), str) for key in _KEYS):
        raise ConfigurationError(f"{path} lacks {' and '.join(_KEYS)}; delete it to generate new ones")
    return {key: data[key] for key in _KEYS}


def _generate(path: Path) -> dict[str, str]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    generated = {key: secrets.token_urlsafe(24) for key in _KEYS}
    try:
        # O_EXCL: two processes starting at once must not each write different passwords.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_generated(path)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(generated, handle)
        handle.flush()
        os.fsync(handle.fileno())
    return generated


def resolve_credentials(settings: Settings, *, create: bool = False) -> Credentials:
    """Return the users and passwords for ``settings``.

    Args:
        settings: the configuration (passwords set there win).
        create: generate missing passwords into the secrets file (the embedded service's
            start does this; clients only read).

    Raises:
        ServiceError: when a password is needed, none is configured, and none was generated yet.
    """
    clickhouse = settings.clickhouse
    configured = {"password": clickhouse.password, "analyst_password": clickhouse.analyst_password}
    missing = [key for key, value in configured.items() if value is None]
    generated: dict[str, str] = {}
    if missing and not clickhouse.is_external and not clickhouse.allow_no_password:
        path = secrets_path(settings)
        generated = _generate(path) if create else _read_generated(path)
        if not generated:
            raise ServiceError(
                f"no warehouse password is configured and none was generated yet in {path}: "
                f"run `tickwave up` (it generates them), or set TICKWAVE_CLICKHOUSE_PASSWORD"
            )

    def password(key: str) -> SecretStr:
        value = configured[key]
        return value if value is not None else SecretStr(generated.get(key, ""))

    return Credentials(clickhouse.user, password("password"), clickhouse.analyst_user, password("analyst_password"))


def hand_over(credentials: Credentials) -> int:
    """Write ``credentials`` into a new pipe and return its inheritable read end.

    The write end is closed before returning, so the reader sees the end of the data; the
    text (a few hundred bytes) fits the pipe's buffer, so no writer must wait for it.
    """
    text = json.dumps(
        {
            "user": credentials.user,
            "password": credentials.password.get_secret_value(),
            "analyst_user": credentials.analyst_user,
            "analyst_password": credentials.analyst_password.get_secret_value(),
        }
    ).encode()
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, text)
    finally:
        os.close(write_end)
    os.set_inheritable(read_end, True)
    return read_end


def take_over(descriptor: int) -> Credentials:
    """Read the credentials :func:`hand_over` wrote, and close ``descriptor``.

    Raises:
        ConfigurationError: when the descriptor does not carry them.
    """
    try:
        with os.fdopen(descriptor, "rb") as handle:
            data = json.loads(handle.read())
        return Credentials(
            data["user"], SecretStr(data["password"]), data["analyst_user"], SecretStr(data["analyst_password"])
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"descriptor {descriptor} does not carry the warehouse credentials: {exc}") from exc
