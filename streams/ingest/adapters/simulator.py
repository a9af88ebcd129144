"""The simulator as a source: steps of simulated market, checked, released in (scaled) real time."""

from __future__ import annotations

import threading
from collections.abc import Iterator

from streams.ingest.batches import SourceBatch
from streams.ingest.logic import Pacer, TickValidator
from streams.ingest.simulation import SimulatedMarket


class SimulatorSource:
    """Ticks from a :class:`SimulatedMarket` until ``duration_ms`` of simulated time has passed.

    Args:
        market: the simulated market (it holds the start time).
        validator: checks and numbers the ticks.
        pacer: releases them at ``speed`` times real time, or as fast as possible.
        stop: set to end the run (SIGTERM).
        duration_ms: simulated time to run for (None: until stopped).
        step_ms: simulated time generated per batch.
    """

    name = "sim"

    def __init__(
        self,
        market: SimulatedMarket,
        validator: TickValidator,
        pacer: Pacer,
        stop: threading.Event,
        duration_ms: int | None = None,
        step_ms: int = 100,
    ) -> None:
        self.market = market
        self.validator = validator
        self.pacer = pacer
        self.stop = stop
        self.start_ms = market.now_ms
        self.end_ms = None if duration_ms is None else market.now_ms + duration_ms
        self.step_ms = step_ms

    def batches(self) -> Iterator[SourceBatch]:
        """Yield the market's ticks step by step."""
        while not self.stop.is_set():
            step = self.step_ms if self.end_ms is None else min(self.step_ms, self.end_ms - self.market.now_ms)
            if step <= 0:
                return
            checked = self.validator.validate(self.market.advance(step))
            if checked.rejected:
                yield SourceBatch(checked.ticks.take(slice(0, 0)), checked.rejected)
            for part in self.pacer.pace(checked.ticks):
                yield SourceBatch(part)

    def clock_ms(self) -> int | None:
        """Return the simulated clock (paced) or the market's generation time."""
        return self.pacer.virtual_now_ms() or self.market.now_ms

    def progress(self) -> float | None:
        """Return the fraction of the duration generated (None when unbounded)."""
        if self.end_ms is None:
            return None
        return min(1.0, (self.market.now_ms - self.start_ms) / max(self.end_ms - self.start_ms, 1))

    def close(self) -> None:
        """Nothing to release."""
