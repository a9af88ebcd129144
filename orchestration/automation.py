"""Whether the production schedules and the sensors that launch runs start RUNNING on a fresh Dagster instance.

Dagster starts every schedule and sensor STOPPED unless its definition says otherwise, so a
fresh platform would write no compliance report until someone found the toggle in the UI.
Tickwave's definitions start them RUNNING, unless ``orchestration.schedules_enabled`` is
false (a platform scheduled from elsewhere). A toggle set in the UI is stored by the
instance and wins over either default. The sensors that only record (run outcomes, late
reports, table observations) always run: they launch nothing.
"""

from __future__ import annotations

import dagster as dg

from tickwave.config import load_settings

RECORDING = dg.DefaultSensorStatus.RUNNING  # the sensors that launch no run


def schedules_enabled() -> bool:
    """Read ``orchestration.schedules_enabled`` (the definitions are loaded once per process: their entry point)."""
    return load_settings().orchestration.schedules_enabled


def schedule_status() -> dg.DefaultScheduleStatus:
    """The default status of every production schedule."""
    return dg.DefaultScheduleStatus.RUNNING if schedules_enabled() else dg.DefaultScheduleStatus.STOPPED


def launching_sensor_status() -> dg.DefaultSensorStatus:
    """The default status of the sensors that launch runs (retraining, the performance mart)."""
    return dg.DefaultSensorStatus.RUNNING if schedules_enabled() else dg.DefaultSensorStatus.STOPPED
