"""Parsing of ``tickwave ingest`` options."""

from __future__ import annotations

import pytest

from streams.ingest.sources import parse_duration_ms, parse_instant_ms, parse_speed
from tickwave.errors import ConfigurationError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90", 90_000),
        ("90s", 90_000),
        ("15m", 900_000),
        ("2h", 7_200_000),
        ("1d", 86_400_000),
        ("250ms", 250),
        ("1.5m", 90_000),
    ],
)
def test_parse_duration_when_valid_then_milliseconds(text: str, expected: int) -> None:
    assert parse_duration_ms(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("max", None), ("MAX", None), ("1", 1.0), ("10x", 10.0), ("0.5", 0.5)])
def test_parse_speed_when_valid_then_factor_or_none(text: str, expected: float | None) -> None:
    assert parse_speed(text) == expected


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (parse_duration_ms, "soon"),
        (parse_duration_ms, "-5s"),
        (parse_speed, "fast"),
        (parse_speed, "0"),
        (parse_speed, "-2"),
    ],
)
def test_parse_when_invalid_then_configuration_error(parse: object, text: str) -> None:
    assert callable(parse)
    with pytest.raises(ConfigurationError):
        parse(text)


def test_parse_instant_when_zone_absent_then_utc_and_when_given_then_honoured() -> None:
    assert parse_instant_ms("2024-03-04T08:00:00", "--from") == 1_709_539_200_000
    assert parse_instant_ms("2024-03-04 10:00:00+02:00", "--from") == 1_709_539_200_000
    assert parse_instant_ms("2024-03-04T08:00:00Z", "--to") == 1_709_539_200_000
    assert parse_instant_ms(None, "--to") is None
    with pytest.raises(ConfigurationError, match="--to 'yesterday'"):
        parse_instant_ms("yesterday", "--to")
