"""The shipped sample files: simulated, labelled, small, and reproducible byte for byte."""

from __future__ import annotations

from pathlib import Path

from streams.ingest.adapters.files import detect_format, symbol_from_name
from streams.ingest.sample import SAMPLE_DIR, generate, sample_paths, simulate_sample


def test_sample_when_regenerated_then_identical_bytes(tmp_path: Path) -> None:
    fresh = generate(tmp_path)

    assert [path.name for path in fresh] == [path.name for path in sample_paths()]
    for new, shipped in zip(fresh, sample_paths(), strict=True):
        assert new.read_bytes() == shipped.read_bytes(), f"{shipped.name} changed: run python -m streams.ingest.sample"


def test_sample_when_inspected_then_small_labelled_mt5_export_of_several_symbols_and_minutes() -> None:
    paths = sample_paths()
    ticks = simulate_sample()
    readme = (SAMPLE_DIR / "README.md").read_text()

    assert sum(path.stat().st_size for path in paths) < 1_000_000
    assert len({symbol_from_name(path) for path in paths}) >= 2
    assert all("SIMULATED" in path.name and path.name in readme for path in paths)
    assert "SIMULATED tick data, not market data" in readme
    assert all(detect_format(path) == "mt5" for path in paths)
    assert (ticks.time_ms.max() - ticks.time_ms.min()) >= 5 * 60_000
    assert 2_000 < len(ticks) < 10_000
    assert f"{len(ticks):,} ticks" in readme
