"""What every configuration section shares: frozen, typed, unknown keys refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

ENV_PREFIX = "TICKWAVE_"
CONFIG_FILE_ENV = "TICKWAVE_CONFIG"
DEFAULT_CONFIG_FILE = "tickwave.toml"
HH_MM = r"^([01]\d|2[0-3]):[0-5]\d$"  # a time of day, HH:MM


class Section(BaseModel):
    """A configuration section: frozen after loading, unknown keys refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
