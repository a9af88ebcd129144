"""Regenerate the sample tick files in ``streams/samples/``: SIMULATED data, MT5 export format.

``python -m streams.ingest.sample`` writes one file per symbol, ten minutes of a London
morning quoted by :class:`~streams.ingest.simulation.SimulatedMarket` (fixed seed, fixed
start, server clock = UTC). The files are deterministic: tests check that regenerating
them gives the same bytes, and later stages count exact bars from them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from streams.ingest.adapters.files import write_mt5_export
from streams.ingest.batches import TickBatch
from streams.ingest.logic import TickValidator
from streams.ingest.simulation import SimulatedMarket
from tickwave.clock import ManualClock
from tickwave.config import default_symbols
from tickwave.timezones import WallClock

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "samples"
SAMPLE_SYMBOLS = ("EURUSD", "USDJPY", "XAUUSD")
SAMPLE_START = datetime(2024, 3, 4, 8, 0, tzinfo=UTC)
SAMPLE_MINUTES = 10
SAMPLE_RATE = 6.0
SAMPLE_SEED = 7


def sample_name(symbol: str) -> str:
    """Return the file name of a symbol's sample (MT5's ``SYMBOL_FROM_TO`` pattern, marked SIMULATED)."""
    end = SAMPLE_START.timestamp() + SAMPLE_MINUTES * 60
    return f"{symbol}_SIMULATED_{SAMPLE_START:%Y%m%d%H%M}_{datetime.fromtimestamp(end, tz=UTC):%Y%m%d%H%M}.csv"


def sample_paths(directory: Path = SAMPLE_DIR) -> list[Path]:
    """Return the sample files, one per symbol."""
    return [directory / sample_name(symbol) for symbol in SAMPLE_SYMBOLS]


def simulate_sample() -> TickBatch:
    """Return the sample's ticks (all symbols, in time order), as the simulator makes them."""
    registry = default_symbols()
    start_ms = int(SAMPLE_START.timestamp() * 1000)
    market = SimulatedMarket(list(SAMPLE_SYMBOLS), registry, SAMPLE_RATE, SAMPLE_SEED, start_ms)
    validator = TickValidator(registry, "sim", max_future_ms=0, clock=ManualClock(start_ms + SAMPLE_MINUTES * 60_000))
    batches = [validator.validate(market.advance(1000)).ticks for _ in range(SAMPLE_MINUTES * 60)]
    return TickBatch.concat(batches)


def generate(directory: Path = SAMPLE_DIR) -> list[Path]:
    """Write the sample files into ``directory``; return their paths."""
    ticks, registry, clock = simulate_sample(), default_symbols(), WallClock("UTC")
    directory.mkdir(parents=True, exist_ok=True)
    for symbol, path in zip(SAMPLE_SYMBOLS, sample_paths(directory), strict=True):
        code = ticks.symbols.index(symbol)
        write_mt5_export(path, ticks.take(ticks.symbol_code == code), registry[symbol].digits, clock)
    return sample_paths(directory)


if __name__ == "__main__":
    for written in generate():
        print(f"wrote {written} ({written.stat().st_size} bytes)")
