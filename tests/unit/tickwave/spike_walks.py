"""Long random price walks with spikes, bursts, level shifts and late stamps, for the spike filter's parity test.

Built from :class:`random.Random` (its sequence is fixed across Python versions), so the walks
are the same on every machine; ``tests/fixtures/spike/decisions.json.gz`` holds what the filter
decided on them, with a digest of the walks to show they are still the ones it was recorded on.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import random
from collections.abc import Iterator
from typing import Any

from tickwave.contracts import Tick

START_MS = 1_700_000_000_000
TICKS_PER_WALK = 20_000

# Each walk: its filter's limits (the constructor's keywords) and its starting mid.
WALKS: tuple[tuple[dict[str, Any], float], ...] = (
    ({}, 2000.0),
    ({}, 1.1),
    ({"threshold_bps": 50.0, "confirm_after": 3, "confirm_ms": 2_000}, 150.0),
    ({"threshold_bps": 800.0, "tolerance_bps": 20.0, "max_factor": 1.3}, 3e-05),
    ({"confirm_after": 1, "confirm_ms": 0, "alpha": 0.5}, 5e6),
    ({"threshold_bps": 25.0, "confirm_after": 8, "confirm_ms": 60_000, "tolerance_bps": 300.0}, 0.7),
)


def walk(seed: int, start_mid: float, count: int = TICKS_PER_WALK) -> Iterator[Tick]:
    """Yield ``count`` ticks: a noisy walk with lone spikes, bursts, level shifts and ticks stamped late."""
    rng = random.Random(seed)
    level, time_ms, burst, burst_factor, far, far_factor = start_mid, START_MS, 0, 1.0, 0, 1.0
    for _ in range(count):
        level *= math.exp(rng.gauss(0.0, 2e-4))
        kind = rng.random()
        if kind < 0.002:
            level *= 1.0 + rng.choice((-1, 1)) * rng.uniform(0.03, 0.3)  # a gap the market holds
        elif kind < 0.0025 and not far:
            far, far_factor = rng.randint(20, 400), rng.choice((3.0, 1 / 3.0))  # a feed gone far off, for a while
        far = max(far - 1, 0)
        mid = level * (far_factor if far else 1.0)
        if burst:
            burst -= 1
            mid = level * burst_factor
        elif kind > 0.985:
            burst = rng.randint(0, 8)
            burst_factor = rng.choice((1.0 + rng.uniform(0.02, 0.5), 1.0 - rng.uniform(0.02, 0.5), rng.uniform(3, 100)))
            mid = level * burst_factor
        step = rng.random()
        if step < 0.1:
            time_ms += 0
        elif step < 0.97:
            time_ms += rng.randint(1, 2_000)
        elif step < 0.99:
            time_ms += rng.randint(5_000, 60_000)
        else:
            time_ms -= rng.randint(1, 20_000)  # stamped before the ticks already seen
        half_spread = mid * rng.uniform(0.0, 1e-4)
        yield Tick("XAUUSD", time_ms, 0, mid - half_spread, mid + half_spread)


def digest(ticks: list[Tick]) -> str:
    """Return a SHA-256 of the ticks' times and quotes (the floats' exact bits)."""
    hashed = hashlib.sha256()
    for tick in ticks:
        hashed.update(f"{tick.time_ms} {tick.bid.hex()} {tick.ask.hex()}\n".encode())
    return hashed.hexdigest()


def dataclass_pickle(state: dict[str, Any]) -> bytes:
    """Return the pickle the ``SpikeFilter`` dataclass wrote of this field dict (protocol 2's opcodes).

    The class by name, created without arguments (``NEWOBJ``), then its field dict as the state
    (``BUILD``): what ``pickle`` writes for a plain dataclass, and what the recovery store holds.
    """
    fields = pickle.dumps(state, protocol=2)[2:-1]  # the dict alone: no protocol header, no STOP
    return b"\x80\x02ctickwave.validation\nSpikeFilter\n)\x81" + fields + b"b."
