"""The market calendar section: trading hours, the daily rollover and holidays.

One section for the whole platform, not a part of ``execution``: the execution process
(pre-trade checks, the trading day of P&L), the data-quality freshness checks, the alert
rules and the H4/D1 bar alignment of the dataflow all read it, through
:class:`tickwave.market.MarketCalendar`, so they cannot disagree about when the market is open.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, field_validator

from tickwave.config.base import HH_MM, Section


class MarketSettings(Section):
    """When the market trades and when the trading day rolls over."""

    hours: Literal["fx", "always"] = Field(
        default="fx", description="fx: closed from Friday to Sunday at the rollover (New York time); always: open"
    )
    timezone: str = Field(default="America/New_York", description="zone of the market hours and rollover")
    rollover_time: str = Field(default="17:00", pattern=HH_MM, description="trading day rollover, HH:MM local")
    holidays: tuple[date, ...] = Field(
        default=(), description="closed local dates (JSON list of YYYY-MM-DD in the environment)"
    )

    @field_validator("timezone")
    @classmethod
    def _zone_known(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/New_York)") from exc
        return value
