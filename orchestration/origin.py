"""What started a Dagster run, read from what the instance recorded itself, not from the run's tags.

A run's tags are written by whoever launches it: GraphQL's ``launchRun`` stores any tag it is
given, ``dagster/schedule_name`` and ``dagster/sensor_name`` included. What no client can write
is a schedule's or a sensor's tick: the daemon records on each tick the ids of the runs it
launched (the instance's tick storage; GraphQL has no mutation that writes one). So a run is a
schedule's (a sensor's) only when a tick of the schedule (sensor) its tag names lists the run;
a tag that no tick backs is reported as the claim it is, and the run as launched from the UI
or GraphQL. A backfill is always launched by a person (the UI, GraphQL or the CLI).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

SCHEDULE_TAG = "dagster/schedule_name"
SENSOR_TAG = "dagster/sensor_name"
BACKFILL_TAG = "dagster/backfill"
REQUESTED_BY_TAG = "tickwave/requested_by"  # who submitted a run through orchestration.client: a claim, a tag
UNNAMED_LAUNCH = "the Dagster UI or GraphQL, which name no user (docs/security.md: put it behind a proxy)"
# The ticks looked at: the newest ones up to a minute after the run's creation (the tick that
# launched a run started before it, seconds before: a sensor every 60 s has 60 ticks an hour).
TICKS_LOOKED_AT = 100


def trigger(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    """Name what started ``run``: a schedule or sensor whose tick launched it, else a launch by a person."""
    for tag, kind in ((SCHEDULE_TAG, "schedule"), (SENSOR_TAG, "sensor")):
        if name := run.tags.get(tag):
            if launched_by_tick(instance, run, name):
                return f"{kind} {name}"
            return f"{_person(run)}; its tag names {kind} {name}, but no tick of it launched this run"
    if name := run.tags.get(BACKFILL_TAG):
        return f"backfill {name} of {_person(run)}"
    return _person(run)


def _person(run: dg.DagsterRun) -> str:
    if name := run.tags.get(REQUESTED_BY_TAG):
        return f"{name} (as the launch claims)"
    return UNNAMED_LAUNCH


def launched_by_tick(instance: dg.DagsterInstance, run: dg.DagsterRun, name: str) -> bool:
    """Return True when a tick of the schedule or sensor ``name`` in the run's code location lists the run.

    Schedules' and sensors' ticks are stored alike, keyed by the instigator's selector (location,
    repository, name), which stays the same across restarts of the code server.
    """
    from dagster._core.definitions.selector import InstigatorSelector

    origin = run.remote_job_origin
    if origin is None:  # run in process (tests, `dagster asset materialize`): no daemon launched it
        return False
    repository = origin.repository_origin
    selector = InstigatorSelector(
        location_name=repository.code_location_origin.location_name,
        repository_name=repository.repository_name,
        name=name,
    )
    record = instance.get_run_record_by_id(run.run_id)
    created = record.create_timestamp.timestamp() if record else None
    ticks = instance.get_ticks(
        repository.get_instigator_origin(name).get_id(),
        selector.get_id(),
        before=None if created is None else created + 60.0,
        limit=TICKS_LOOKED_AT,
    )
    return any(run.run_id in tick.run_ids for tick in ticks)
