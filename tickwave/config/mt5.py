"""The MetaTrader 5 terminal section."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator

from tickwave.config.base import Section
from tickwave.timezones import parse_timezone


class MT5Settings(Section):
    """A MetaTrader 5 terminal (Windows only) polled for live ticks."""

    login: int | None = Field(default=None, description="trading account number (None: the terminal's current one)")
    password: SecretStr | None = Field(default=None, description="account password (secret)")
    server: str | None = Field(default=None, description="trade server name as shown in the terminal")
    path: Path | None = Field(default=None, description="terminal64.exe to start or attach to (None: auto-detect)")
    portable: bool = Field(default=False, description="start the terminal in portable mode")
    timeout_ms: int = Field(default=60_000, ge=1, description="how long initialize/login may take (ms)")
    server_timezone: str = Field(
        default="UTC",
        description='time zone of the broker\'s server clock: an IANA name ("Europe/Athens") or "+02:00"',
    )
    symbols: list[str] = Field(default=["EURUSD"], description="symbols to poll")
    poll_interval_ms: int = Field(default=100, ge=1, description="pause between polls of the terminal (ms)")
    window_s: int = Field(default=60, ge=1, description="seconds of ticks requested per copy_ticks_range call")
    backfill_s: int = Field(default=0, ge=0, description="seconds of history sent at start before live ticks")
    reconnect_initial_s: float = Field(default=1.0, gt=0, description="first pause before reconnecting (s)")
    reconnect_max_s: float = Field(default=60.0, gt=0, description="longest pause between reconnect attempts (s)")

    @field_validator("server_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        parse_timezone(value)  # raises ValueError naming the accepted forms
        return value
