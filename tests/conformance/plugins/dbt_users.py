"""A pytest plugin for dbt-clickhouse's suite: its conftest's three grant users are not created.

The suite's conftest creates three users (``CREATE USER IF NOT EXISTS … IDENTIFIED WITH
sha256_hash``) before any test and drops them after; the warehouse's engine keeps no users (its
users are the HTTP interface's two), so that setup fails and every test errors. This plugin,
loaded with ``-p dbt_users``, lets exactly those two statements of the conftest through as
no-ops; the tests that grant to those users still fail, each counted.
"""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.httpclient import HttpClient

_SKIPPED = ("CREATE USER IF NOT EXISTS %s  IDENTIFIED WITH sha256_hash BY %s", "DROP USER %s")
_command = HttpClient.command


def _command_without_test_users(self: HttpClient, cmd: str, *args: Any, **kwargs: Any) -> Any:
    if cmd in _SKIPPED:
        return None
    return _command(self, cmd, *args, **kwargs)


HttpClient.command = _command_without_test_users  # type: ignore[method-assign]
