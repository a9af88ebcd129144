"""Typed Dagster resources built from Tickwave's settings, bound when the definitions load.

The resource's fields hold only *where* (a state dir, a database) and a fixed clock, never a
secret: the warehouse's address and passwords are resolved at run time exactly as every
Tickwave process resolves them (``TICKWAVE_*`` variables, the TOML file, or the secrets
file the embedded warehouse generated), so nothing secret reaches Dagster's config, its
UI or its logs. The fields are set in Python (tests point them at a database of their own);
the deployment's definitions bind the resource with :func:`bound`, so no launch's run config
can set them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from tickwave.clock import Clock, ManualClock, SystemClock
from tickwave.config import Settings, load_settings

if TYPE_CHECKING:
    from clickhouse_connect.driver.client import Client


def bound(value: object, description: str) -> dg.ResourceDefinition:
    """Return a resource whose value is ``value``, fixed here: its run config is an empty shape, so a key is refused.

    A ``ConfigurableResource`` given to ``Definitions`` as an instance stays configurable at launch (every
    field appears in every job's run-config schema, its value only a default); Dagster's
    ``ResourceDefinition.hardcoded_resource`` takes no fields but accepts any config (``Any``) and ignores it.
    """

    def value_of(_: dg.InitResourceContext) -> object:
        return value

    return dg.ResourceDefinition(resource_fn=value_of, config_schema={}, description=description)


class TickwaveResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Tickwave's settings and a warehouse client (clickhouse-connect over HTTP)."""

    state_dir: str | None = None  # default: TICKWAVE_STATE_DIR / the TOML file / .tickwave
    database: str | None = None  # default: clickhouse.database
    model_id: str | None = None  # default: models.model_id, else the default id of models.framework's kind
    clock_ms: int | None = None  # a fixed time (UTC ms) for tests and replays; default: the system clock

    def clock(self) -> Clock:
        """Return the clock runs and sensors tell the time by: the system clock, or the fixed ``clock_ms``."""
        return SystemClock() if self.clock_ms is None else ManualClock(self.clock_ms)

    def now(self) -> datetime:
        """Return the clock's time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock().now_ms() / 1000, UTC)

    def settings(self) -> Settings:
        """Load the settings once per call (they are frozen; the process environment is the source)."""
        overrides: dict[str, Any] = {}
        if self.state_dir:
            overrides["state_dir"] = Path(self.state_dir)
        if self.database:
            overrides["clickhouse"] = {"database": self.database}
        if self.model_id:
            overrides["models"] = {"model_id": self.model_id}
        return load_settings(**overrides)

    @contextmanager
    def client(self) -> Iterator[Client]:
        """Yield a read-write warehouse client, closed afterwards."""
        from adapters.warehouse.client import connect

        client = connect(self.settings())
        try:
            yield client
        finally:
            client.close()
