"""Build a tick source from options (simulator, replay files, MT5) and send it to Kafka.

Shared by ``tickwave ingest``, the demo and the chaos harness: parsing of durations,
speeds and instants, the choice of adapter, and the loop onto the ``ticks`` topic.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from tickwave.clock import SystemClock
from tickwave.config import Settings
from tickwave.errors import ConfigurationError
from tickwave.topics import INGEST

if TYPE_CHECKING:
    from streams.ingest.runner import IngestReport, TickSource


class SourceKind(StrEnum):
    """Where ticks come from."""

    SIM = "sim"
    REPLAY = "replay"
    MT5 = "mt5"


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """Read ``90``, ``90s``, ``15m``, ``2h`` or ``1d`` (a bare number is seconds) as milliseconds.

    Raises:
        ConfigurationError: for anything else.
    """
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise ConfigurationError(f"--duration {text!r}: use seconds (90) or 90s, 15m, 2h, 1d")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2) or "s"])


def parse_speed(text: str) -> float | None:
    """Read ``max`` (as fast as possible, None) or a factor of real time (``1``, ``10``, ``0.5``, ``10x``).

    Raises:
        ConfigurationError: for anything else.
    """
    cleaned = text.strip().lower()
    if cleaned == "max":
        return None
    cleaned = cleaned.removesuffix("x")
    try:
        speed = float(cleaned)
    except ValueError:
        speed = 0.0
    if not speed > 0:
        raise ConfigurationError(f"--speed {text!r}: use max or a positive factor of real time (1, 10, 0.5)")
    return speed


def parse_instant_ms(text: str | None, option: str) -> int | None:
    """Read an ISO 8601 date or time (UTC unless it names a zone) as epoch milliseconds.

    Raises:
        ConfigurationError: when it is not ISO 8601.
    """
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError as exc:
        raise ConfigurationError(f"{option} {text!r}: use ISO 8601, e.g. 2024-03-04T08:00:00Z") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _symbols(text: str | None, default: list[str]) -> list[str]:
    return [symbol.strip() for symbol in text.split(",") if symbol.strip()] if text else list(default)


def build_source(
    settings: Settings,
    kind: SourceKind,
    stop: threading.Event,
    *,
    symbols: str | None = None,
    rate: float | None = None,
    duration: str | None = None,
    files: list[Path] | None = None,
    speed: str | None = None,
    from_time: str | None = None,
    to_time: str | None = None,
    columns: str | None = None,
    timezone: str | None = None,
    seed: int | None = None,
) -> TickSource:
    """Build the source the options describe.

    Raises:
        ConfigurationError: for options that do not fit the source.
    """
    from streams.ingest.logic import Pacer, TickValidator  # heavy imports stay out of `tickwave --help`

    registry, ingest = settings.symbols, settings.ingest
    system_clock = SystemClock()
    duration_ms = parse_duration_ms(duration) if duration else None
    if kind is SourceKind.SIM:
        from streams.ingest.adapters.simulator import SimulatorSource
        from streams.ingest.simulation import SimulatedMarket

        pace = parse_speed(speed or "1")
        start = parse_instant_ms(from_time, "--from")
        if start is None:
            if pace is None and duration_ms is None:
                raise ConfigurationError(
                    "--speed max needs --duration (or --from): the simulator would outrun the clock"
                )
            start = system_clock.now_ms() - (duration_ms or 0) if pace is None else system_clock.now_ms()
        chosen = _symbols(symbols, ingest.sim_symbols)
        try:
            market = SimulatedMarket(
                chosen, registry, rate or ingest.sim_rate, ingest.sim_seed if seed is None else seed, start
            )
        except (KeyError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from exc
        validator = TickValidator(registry, "sim", ingest.max_source_clock_lead_ms, system_clock)
        step_ms = 100 if pace is not None else 10_000
        return SimulatorSource(market, validator, Pacer(pace, time.monotonic, stop.wait), stop, duration_ms, step_ms)
    if kind is SourceKind.REPLAY:
        from streams.ingest.adapters.files import ReplayOptions, ReplaySource
        from streams.ingest.columns import ColumnMap
        from tickwave.timezones import WallClock

        paths = _expand(files or [])
        chosen = _symbols(symbols, [])
        if len(chosen) > 1:
            raise ConfigurationError("replay takes one symbol at most (for files that do not name theirs)")
        try:
            mapping = ColumnMap.parse(columns) if columns else ColumnMap()
            clock = WallClock(timezone or settings.mt5.server_timezone)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from exc
        options = ReplayOptions(
            mapping=mapping,
            symbol=chosen[0] if chosen else None,
            clock=clock,
            from_ms=parse_instant_ms(from_time, "--from"),
            to_ms=parse_instant_ms(to_time, "--to"),
            speed=parse_speed(speed or "max"),
            batch_ticks=ingest.batch_ticks,
        )
        return ReplaySource(paths, options, registry, ingest.max_source_clock_lead_ms, stop, system_clock)
    from adapters.mt5.api import load_metatrader5
    from adapters.mt5.terminal import Terminal
    from streams.ingest.adapters.mt5 import Mt5Source

    terminal = Terminal(settings.mt5, load_metatrader5())
    validator = TickValidator(registry, "mt5", ingest.max_source_clock_lead_ms, system_clock)
    return Mt5Source(terminal, _symbols(symbols, settings.mt5.symbols), registry, validator, stop, system_clock)


def _expand(paths: list[Path]) -> list[Path]:
    # A directory stands for the tick files in it.
    expanded: list[Path] = []
    for path in paths:
        if path.is_dir():
            expanded.extend(
                sorted(p for p in path.iterdir() if p.suffix.lower() in (".csv", ".txt", ".parquet", ".pq"))
            )
        else:
            expanded.append(path)
    return expanded


def run_source(
    settings: Settings,
    source: TickSource,
    stop: threading.Event,
    on_batch: Callable[[IngestReport], None] | None = None,
) -> IngestReport:
    """Create the topics if needed, then send ``source`` to Kafka until it ends or ``stop`` is set.

    It publishes as the ingest principal unless ``kafka.username`` names another (the secured broker's default).
    """
    from adapters.bus import Profile, default_principal, make_admin, resolve_bootstrap
    from adapters.metrics import metrics_served
    from adapters.topics import create_topics
    from streams.ingest.adapters.kafka import KafkaSink
    from streams.ingest.metrics import IngestCollector
    from streams.ingest.runner import run_ingest
    from tickwave.topics import TICKS, TICKS_DLQ, topic_name

    settings = default_principal(settings, INGEST)

    bootstrap = resolve_bootstrap(settings)
    # `topics create` and `up` set the retention; under ACLs ingest sees (and may write) only its two topics.
    create_topics(make_admin(bootstrap), settings, is_retention_set=False, base_names=(TICKS, TICKS_DLQ))
    profile: Profile = "bulk" if source.name == "replay" else "live"  # live ticks wait 1 ms for a batch, not 5
    sink = KafkaSink(
        bootstrap,
        topic_name(settings, TICKS),
        topic_name(settings, TICKS_DLQ),
        source.name,
        SystemClock(),
        profile=profile,
    )
    ingest = settings.ingest
    with metrics_served(settings, "ingest", [IngestCollector(sink)]):
        return run_ingest(
            source,
            sink,
            stop,
            stats_interval_s=ingest.stats_interval_s,
            flush_timeout_s=ingest.flush_timeout_s,
            on_batch=on_batch,
        )


def replay_sample(settings: Settings, speed: str = "max") -> IngestReport:
    """Replay the shipped sample (SIMULATED ticks, ``streams/samples``), at full speed unless ``speed`` says."""
    from streams.ingest.sample import SAMPLE_DIR

    stop = threading.Event()
    source = build_source(settings, SourceKind.REPLAY, stop, files=[SAMPLE_DIR], timezone="UTC", speed=speed)
    return run_source(settings, source, stop)
