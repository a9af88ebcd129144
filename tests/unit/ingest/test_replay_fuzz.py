"""Fuzzing the MT5 export replay with generated files: no crash, every line accounted for.

Each generated file mixes good lines with damaged ones (garbage, wrong field counts,
impossible dates, unparseable numbers, impossible prices, future or out-of-order times,
invalid UTF-8). The replay's output is compared with a small reference reader written
here, line by line, from the documented rules: every non-blank line must come out
exactly once, as the same tick or as a dead letter with the same reason code and the
line itself as raw input.
"""

from __future__ import annotations

import itertools
import math
import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.ingest.adapters.files import ReplayOptions, ReplaySource
from streams.ingest.batches import Rejected
from tests.unit.ingest.helpers import NOW_MS, REGISTRY
from tickwave.clock import ManualClock
from tickwave.contracts import Tick

HEADER = "<DATE>\t<TIME>\t<BID>\t<ASK>\t<LAST>\t<VOLUME>\t<FLAGS>"
START = datetime(2024, 3, 4, 7, 0, tzinfo=UTC)  # an hour before NOW_MS
NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$|^[+-]?(?:nan|inf|infinity)$", re.IGNORECASE)
STAMP = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2}) (\d{2}):(\d{2}):(\d{2})(?:\.(\d{3}))?$")


# ------------------------------------------------------------------------------------
# The reference reader: one line at a time, straight from the rules in the docstrings
# ------------------------------------------------------------------------------------


@dataclass
class Reference:
    bid: float = math.nan
    ask: float = math.nan
    last: float = 0.0
    newest_ms: int = -(2**62)
    seq: int = 0

    def read(self, line: str) -> Tick | str:
        """Return the tick a line makes, or the reason code it is rejected with."""
        fields = line.split("\t")
        if len(fields) != 7:
            return "wrong_column_count"
        date, time, *numbers = fields
        stamp = STAMP.match(f"{date} {time}") if date and time else None
        try:
            moment = datetime(*(int(g) for g in stamp.groups()[:6]), tzinfo=UTC) if stamp else None
        except ValueError:
            moment = None
        if moment is None:
            return "unparseable"
        values: list[float | None] = []
        for text in numbers[:4]:
            if text and not NUMBER.match(text):
                return "unparseable"
            values.append(float(text) if text else None)
        if numbers[4] and not re.fullmatch(r"[+-]?\d+", numbers[4]):
            return "unparseable"
        flags = int(numbers[4]) if numbers[4] else 0
        bid, ask, last, volume = values
        # Empty prices repeat the latest readable, possible value (even from a row rejected later).
        bid_out = self.bid if bid is None else bid
        ask_out = self.ask if ask is None else ask
        last_out = self.last if last is None else last
        for name, value in (("bid", bid), ("ask", ask)):
            if value is not None and math.isfinite(value) and value > 0:
                setattr(self, name, value)
        if last is not None and math.isfinite(last) and last >= 0:
            self.last = last
        if (math.isnan(bid_out) and bid is None) or (math.isnan(ask_out) and ask is None):
            return "missing_field"
        volume_out = 0.0 if volume is None else volume
        time_ms = int(moment.timestamp() * 1000) + (int(stamp.group(7)) if stamp and stamp.group(7) else 0)
        prices = (bid_out, ask_out, last_out, volume_out)
        if not all(math.isfinite(v) for v in prices):
            return "non_finite"
        if bid_out <= 0 or ask_out <= 0:
            return "non_positive"
        if ask_out < bid_out:
            return "ask_below_bid"
        if last_out < 0 or volume_out < 0:
            return "negative"
        if not 0 <= flags < 2**32:
            return "bad_flags"
        if time_ms > NOW_MS + 60_000:
            return "future_timestamp"
        if time_ms < self.newest_ms:
            return "out_of_order"
        self.seq = self.seq + 1 if time_ms == self.newest_ms else 0
        self.newest_ms = time_ms
        return Tick("EURUSD", time_ms, self.seq, bid_out, ask_out, last_out, volume_out, flags, "replay")


# ------------------------------------------------------------------------------------
# Generated files
# ------------------------------------------------------------------------------------


def stamp(offset_ms: int) -> str:
    moment = START + timedelta(milliseconds=offset_ms)
    return f"{moment:%Y.%m.%d}\t{moment:%H:%M:%S}.{moment.microsecond // 1000:03d}"


price = st.integers(108_000, 109_000).map(lambda points: points / 100_000)
garbage_text = st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=60)
bad_number = st.sampled_from(["abc", "1.2.3", "1,5", " 1.1", "--1", "0x10", "1_0", "1e", "."])
bad_stamp = st.sampled_from(
    [
        "2024.02.30\t09:00:00.000",
        "2024.13.01\t09:00:00.000",
        "2024-03-04\t09:00:00.000",
        "2024.03.04\t25:00:00.000",
        "2024.03.04\t09:00:00.12",
        "2024.03.04\t09:00",
        "\t09:00:00.000",
        "2099.01.01\t00:00:00.000",
    ]
)


@st.composite
def line(draw: st.DrawFn, offset_ms: int) -> bytes:
    """One line at ``offset_ms`` after START: good (most often) or damaged in one way."""
    kind = draw(st.sampled_from(["good"] * 6 + ["garbage", "columns", "stamp", "number", "price", "late", "bytes"]))
    bid = draw(price)
    ask = bid + draw(st.integers(0, 30)) / 100_000
    show_bid, show_ask = draw(st.sampled_from([(True, True), (True, False), (False, True)]))
    fields = [f"{bid:.5f}" if show_bid else "", f"{ask:.5f}" if show_ask else "", "", "", "6"]
    when = stamp(offset_ms)
    if kind == "garbage":
        return draw(garbage_text).encode()
    if kind == "columns":
        return "\t".join([when, *fields][: draw(st.sampled_from([1, 3, 6]))] + ["x"] * draw(st.integers(0, 2))).encode()
    if kind == "stamp":
        when = draw(bad_stamp)
    elif kind == "number":
        fields[draw(st.integers(0, 4))] = draw(bad_number)
    elif kind == "price":
        fields[:2] = draw(
            st.sampled_from([["-1.0", "1.1"], ["0", "0"], ["1.2", "1.1"], ["nan", "1.1"], ["1.0", "inf"]])
        )
        fields[2:4] = draw(st.sampled_from([["", ""], ["-1", ""], ["", "-5"]]))
    elif kind == "late":
        when = stamp(offset_ms - draw(st.integers(1, 60_000)))
    encoded = "\t".join([when, *fields]).encode()
    if kind == "bytes":
        return encoded[: draw(st.integers(0, len(encoded)))] + b"\xff\xfe\xc3" + encoded[draw(st.integers(0, 10)) :]
    return encoded


tick_file = st.lists(st.sampled_from([0, 0, 1, 7, 250, 1000, 4000]), min_size=40, max_size=150).flatmap(
    lambda gaps: st.tuples(*(line(offset) for offset in itertools.accumulate(gaps))).map(list)
)


def replay(path: Path) -> tuple[list[Tick], list[Rejected]]:
    options = ReplayOptions(batch_ticks=50)  # 2.4 KB blocks: a file spans several batches
    source = ReplaySource([path], options, REGISTRY, 60_000, threading.Event(), clock=ManualClock(NOW_MS))
    ticks: list[Tick] = []
    rejected: list[Rejected] = []
    try:
        for batch in source.batches():
            ticks.extend(batch.ticks.ticks())
            rejected.extend(batch.rejected)
    finally:
        source.close()
    return ticks, rejected


@settings(max_examples=60, deadline=None)
@given(tick_file, st.sampled_from([b"\n", b"\r\n"]))
def test_replay_when_lines_damaged_then_no_crash_and_each_bad_line_dead_lettered_with_its_reason(
    lines: list[bytes], newline: bytes
) -> None:
    with TemporaryDirectory() as folder:
        path = Path(folder) / "EURUSD_202403040700_202403040800.csv"
        path.write_bytes(newline.join([HEADER.encode(), *lines]) + newline)

        ticks, rejected = replay(path)

    reference = Reference()
    texts = [raw.decode("utf-8", errors="replace") for raw in lines]
    expected = [(text, reference.read(text)) for text in texts if text]  # blank lines are skipped
    expected_ticks = [outcome for _text, outcome in expected if isinstance(outcome, Tick)]
    expected_rejects = sorted((text, outcome) for text, outcome in expected if isinstance(outcome, str))
    assert ticks == expected_ticks
    assert sorted((r.raw, r.reason.split(":")[0]) for r in rejected) == expected_rejects
    assert all(r.reason.split(": ", 1)[1] and r.origin == f"replay:{path.name}" for r in rejected)
