from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwave.timezones import WallClock, parse_timezone

ATHENS = WallClock("Europe/Athens")  # EET (+02:00) in winter, EEST (+03:00) in summer


def local_ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("UTC", timedelta(0)),
        ("+02:00", timedelta(hours=2)),
        ("-0530", -timedelta(hours=5, minutes=30)),
        ("UTC+3:00", timedelta(hours=3)),
        ("GMT-01:00", -timedelta(hours=1)),
    ],
)
def test_parse_timezone_when_fixed_offset_then_that_offset(text: str, offset: timedelta) -> None:
    assert parse_timezone(text).utcoffset(None) == offset


@pytest.mark.parametrize("text", ["Mars/Olympus", "+15:00", "+02:75", "", "EET+"])
def test_parse_timezone_when_unknown_then_error_lists_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="time zone"):
        parse_timezone(text)


def test_to_utc_when_fixed_offset_then_subtracted() -> None:
    clock = WallClock("+03:00")

    assert clock.to_utc_ms(np.array([local_ms("2024-03-04T11:00:00")])).tolist() == [local_ms("2024-03-04T08:00:00")]


def test_to_utc_when_batch_straddles_summer_time_then_each_reading_gets_its_offset() -> None:
    readings = np.array(
        [local_ms("2024-03-31T02:59:59"), local_ms("2024-03-31T04:00:00"), local_ms("2024-07-01T12:00:00")]
    )

    utc = ATHENS.to_utc_ms(readings)

    assert utc.tolist() == [
        local_ms("2024-03-31T00:59:59"),
        local_ms("2024-03-31T01:00:00"),
        local_ms("2024-07-01T09:00:00"),
    ]


def test_to_utc_when_hour_repeats_then_first_occurrence() -> None:
    # On 2024-10-27 Athens goes from 04:00 EEST back to 03:00 EET: 03:30 happens twice.
    assert ATHENS.to_utc_ms(np.array([local_ms("2024-10-27T03:30:00")])).tolist() == [local_ms("2024-10-27T00:30:00")]


@given(
    st.integers(min_value=0, max_value=4_000_000_000_000),
    st.sampled_from(["UTC", "+05:30", "-08:00", "Europe/Athens", "America/New_York"]),
)
def test_local_ms_when_converted_back_then_same_instant(utc_ms: int, zone: str) -> None:
    clock = WallClock(zone)
    local = clock.local_ms(utc_ms)
    # Readings in a repeated hour map back to its first occurrence; every other reading round-trips.
    later = clock.local_ms(utc_ms + 3_600_000)
    is_repeated_hour = later - local < 3_600_000

    assert clock.to_utc_ms(np.array([local]))[0] == utc_ms or is_repeated_hour
