"""The analyst may send `limit` (Grafana's ClickHouse plugin sends it with every query) only within max_result_rows."""

from __future__ import annotations

import pytest

from warehouse_server.protocol import QueryError
from warehouse_server.security.limits import AnalystLimits, analyst_handle_settings

LIMITS = AnalystLimits(
    max_execution_time_s=60,
    max_memory_bytes=1 << 30,
    max_result_rows=1_000,
    max_result_bytes=1 << 20,
    max_concurrent_queries=4,
)


@pytest.mark.parametrize("value", ["0", "1", "1000"])
def test_row_limit_when_within_max_result_rows_then_allowed(value: str) -> None:
    settings = analyst_handle_settings({"limit": value, "max_execution_time": "30"}, LIMITS)

    assert settings["limit"] == value
    assert settings["max_result_rows"] == "1000" and settings["max_execution_time"] == "30"


@pytest.mark.parametrize("value", ["1001", "-1", "1e9", "10 OR 1"])
def test_row_limit_when_above_max_result_rows_or_odd_then_refused(value: str) -> None:
    with pytest.raises(QueryError, match="limit"):
        analyst_handle_settings({"limit": value}, LIMITS)


def test_row_limit_when_allowed_then_other_limits_still_cannot_be_loosened() -> None:
    with pytest.raises(QueryError, match="max_result_rows"):
        analyst_handle_settings({"limit": "10", "max_result_rows": "2000"}, LIMITS)
