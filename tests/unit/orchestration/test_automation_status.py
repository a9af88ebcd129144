"""Reading Dagster's GraphQL answer about schedules and sensors (the live answer: test_orchestrate.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from orchestration.automation_status import automations, parse

TICK = datetime(2026, 11, 21, 0, 30, tzinfo=UTC).timestamp()


def _answer(schedules: list[dict[str, object]], sensors: list[dict[str, object]]) -> dict[str, object]:
    return {
        "data": {
            "repositoriesOrError": {
                "__typename": "RepositoryConnection",
                "nodes": [{"schedules": schedules, "sensors": sensors}],
            }
        }
    }


def test_parse_when_schedules_and_sensors_then_schedules_first_with_their_last_and_next_tick() -> None:
    schedule = {
        "name": "compliance_reports_daily",
        "cronSchedule": "30 0 * * *",
        "executionTimezone": "UTC",
        "scheduleState": {"status": "RUNNING", "ticks": [{"timestamp": TICK, "status": "SUCCESS"}]},
        "futureTicks": {"results": [{"timestamp": TICK + 86_400}]},
    }
    sensor = {
        "name": "a_sensor",
        "minIntervalSeconds": 60,
        "sensorState": {"status": "STOPPED", "ticks": [], "nextTick": None},
    }

    found = parse(_answer([schedule], [sensor]))

    assert [(item.name, item.kind, item.status, item.cadence) for item in found] == [
        ("compliance_reports_daily", "schedule", "RUNNING", "30 0 * * * UTC"),
        ("a_sensor", "sensor", "STOPPED", "every 60 s"),
    ]
    assert found[0].last_tick_at == datetime(2026, 11, 21, 0, 30, tzinfo=UTC) and found[0].last_tick_status == "SUCCESS"
    assert found[0].next_tick_at == datetime(2026, 11, 22, 0, 30, tzinfo=UTC)
    assert (found[1].last_tick_at, found[1].next_tick_at) == (None, None)


@pytest.mark.parametrize(
    "answer",
    [
        {"data": {"repositoriesOrError": {"__typename": "PythonError", "message": "location failed to load"}}},
        {"errors": [{"message": "Cannot query field"}], "data": None},
    ],
)
def test_parse_when_dagster_answers_an_error_then_value_error_naming_it(answer: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="Dagster GraphQL"):
        parse(answer)


def test_automations_when_the_address_is_not_http_then_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match="http"):
        automations("file:///etc/passwd")
