"""Replay sources: MT5 exports (UTF-8 or UTF-16), generic CSV and Parquet, merged by time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from streams.ingest.adapters.files import ReplayOptions, ReplaySource, detect_format
from streams.ingest.batches import Rejected
from streams.ingest.columns import ColumnMap
from tests.unit.ingest.helpers import NOW_MS, REGISTRY
from tickwave.clock import ManualClock
from tickwave.contracts import Tick
from tickwave.errors import ConfigurationError
from tickwave.timezones import WallClock

HEADER = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"


def replay(paths: list[Path], **options: object) -> tuple[list[Tick], list[Rejected], ReplaySource]:
    source = ReplaySource(
        paths, ReplayOptions(**options), REGISTRY, 60_000, threading.Event(), clock=ManualClock(NOW_MS)
    )  # type: ignore[arg-type]
    ticks: list[Tick] = []
    rejected: list[Rejected] = []
    for batch in source.batches():
        ticks.extend(batch.ticks.ticks())
        rejected.extend(batch.rejected)
    source.close()
    return ticks, rejected, source


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def test_replay_when_mt5_export_is_utf16_then_same_ticks_as_utf8(tmp_path: Path) -> None:
    text = "\r\n".join(
        [HEADER, "2024.03.04\t07:00:00.001\t1.08500\t1.08510\t\t\t6", "2024.03.04\t07:00:00.002\t1.08501\t\t\t\t2"]
    )
    utf8, utf16 = tmp_path / "EURUSD_a.csv", tmp_path / "EURUSD_b.csv"
    utf8.write_text(text, encoding="utf-8")
    utf16.write_text(text, encoding="utf-16")  # with a BOM, as Windows tools write it

    from_utf8, _rejected, _source = replay([utf8])
    from_utf16, _rejected, source = replay([utf16])

    assert from_utf16 == from_utf8 and len(from_utf8) == 2
    assert [t.ask for t in from_utf8] == [1.0851, 1.0851]
    assert source.progress() == 1.0


def test_replay_when_a_last_is_implausible_then_refused_and_never_carried_into_empty_lasts(tmp_path: Path) -> None:
    rows = [
        "2024.03.04\t07:00:00.000\t2000.10\t2000.30\t2000.20\t1\t6",
        "2024.03.04\t07:00:00.100\t2000.10\t2000.30\t1e308\t1e308\t6",  # LAST and VOLUME at 1e308
        *(f"2024.03.04\t07:00:01.{index:03d}\t2000.1{index % 10}\t2000.30\t\t\t2" for index in range(14)),
    ]
    path = tmp_path / "XAUUSD_a.csv"
    path.write_text("\n".join([HEADER, *rows]), encoding="utf-8")

    ticks, rejected, _source = replay([path])

    assert [r.reason.split(":")[0] for r in rejected] == ["implausible"]
    assert "last 1e+308 > price_max" in rejected[0].reason and "volume 1e+308" in rejected[0].reason
    assert len(ticks) == 15 and {t.last for t in ticks} == {2000.2}  # the plausible LAST carried, not 1e308


def test_replay_when_several_exports_then_interleaved_by_time(tmp_path: Path) -> None:
    (tmp_path / "EURUSD_x.csv").write_text(
        "\n".join([HEADER] + [f"2024.03.04\t07:00:0{i}.000\t1.085\t1.086\t\t\t6" for i in (0, 2, 4)])
    )
    (tmp_path / "USDJPY_x.csv").write_text(
        "\n".join([HEADER] + [f"2024.03.04\t07:00:0{i}.000\t150.0\t150.1\t\t\t6" for i in (1, 3)])
    )

    ticks, _rejected, _source = replay([tmp_path / "EURUSD_x.csv", tmp_path / "USDJPY_x.csv"], batch_ticks=1)

    assert [(t.symbol, (t.time_ms - ms("2024-03-04T07:00:00")) // 1000) for t in ticks] == [
        ("EURUSD", 0),
        ("USDJPY", 1),
        ("EURUSD", 2),
        ("USDJPY", 3),
        ("EURUSD", 4),
    ]


def test_replay_when_server_clock_and_window_given_then_utc_ticks_inside_it(tmp_path: Path) -> None:
    lines = [f"2024.03.04\t09:00:0{i}.000\t1.085\t1.086\t\t\t6" for i in range(5)]  # server clock UTC+2
    (tmp_path / "EURUSD_x.csv").write_text("\n".join([HEADER, *lines]))

    ticks, _rejected, _source = replay(
        [tmp_path / "EURUSD_x.csv"],
        clock=WallClock("+02:00"),
        from_ms=ms("2024-03-04T07:00:01"),
        to_ms=ms("2024-03-04T07:00:03"),
    )

    assert [t.time_ms for t in ticks] == [ms("2024-03-04T07:00:01"), ms("2024-03-04T07:00:02")]


def test_replay_when_parquet_with_typed_columns_then_ticks_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "ticks.parquet"
    stamps = [datetime(2024, 3, 4, 7, 0, second, tzinfo=UTC) for second in range(4)]
    pq.write_table(
        pa.table(
            {
                "ts": pa.array(stamps, pa.timestamp("ms", tz="UTC")),
                "instrument": pa.array(["EURUSD", "XAUUSD", "EURUSD", "NOPE"]).dictionary_encode(),
                "b": [1.085, 2050.1, 1.086, 1.0],
                "a": [1.0851, 2050.3, 1.0861, 1.1],
                "v": [0.0, 1.5, None, 0.0],
            }
        ),
        path,
        row_group_size=2,
    )

    ticks, rejected, source = replay([path], mapping=ColumnMap.parse("time=ts,symbol=instrument,bid=b,ask=a,volume=v"))

    assert detect_format(path) == "parquet"
    assert [(t.symbol, t.time_ms, t.volume) for t in ticks] == [
        ("EURUSD", ms("2024-03-04T07:00:00"), 0.0),
        ("XAUUSD", ms("2024-03-04T07:00:01"), 1.5),
        ("EURUSD", ms("2024-03-04T07:00:02"), 0.0),
    ]
    assert [r.reason.split(":")[0] for r in rejected] == ["unknown_symbol"]
    assert '"instrument": "NOPE"' in rejected[0].raw
    assert source.progress() == 1.0


def test_replay_when_generic_csv_with_epoch_seconds_and_quotes_then_mapped(tmp_path: Path) -> None:
    path = tmp_path / "dump.csv"
    path.write_text('"when";bid;ask;note\n1709535600.5;1.085;1.0851;"a; quoted note"\n1709535601;"1.086";1.0861;x\n')

    ticks, rejected, _source = replay([path], symbol="EURUSD", mapping=ColumnMap.parse("time=when,time_unit=s"))

    assert rejected == []
    assert [(t.symbol, t.time_ms, t.bid) for t in ticks] == [
        ("EURUSD", 1_709_535_600_500, 1.085),
        ("EURUSD", 1_709_535_601_000, 1.086),
    ]


@pytest.mark.parametrize(
    ("name", "content", "options", "message"),
    [
        ("BTCUSD_x.csv", HEADER + "\n", {}, "'BTCUSD' .* not in the symbol registry"),
        ("dump.csv", "time,price\n1,2\n", {"symbol": "EURUSD"}, r"columns \['time_ms', 'bid', 'ask'\] not found"),
        ("dump.csv", "time_ms,bid,ask\n1,2,3\n", {}, "no 'symbol' column"),
    ],
)
def test_replay_when_file_cannot_be_mapped_then_configuration_error(
    tmp_path: Path, name: str, content: str, options: dict[str, object], message: str
) -> None:
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(ConfigurationError, match=message):
        replay([path], **options)


def test_replay_when_no_file_then_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not found"):
        replay([tmp_path / "missing.csv"])
