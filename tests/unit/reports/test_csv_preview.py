"""The HTML preview parsed from the first bytes of a report's CSV stream."""

from __future__ import annotations

import csv
import io

import pytest

from reports.catalog import HTML_ROW_LIMIT
from reports.daily import csv_preview


def _csv(rows: int) -> bytes:
    lines = ['"id","note","price"\n'] + [f'{n},"row {n}\nsecond line",\\N\n' for n in range(rows)]
    return "".join(lines).encode()


def test_csv_preview_when_the_stream_is_complete_then_header_rows_and_nulls_as_empty() -> None:
    columns, shown = csv_preview(_csv(3), is_complete=True) or ([], [])

    assert columns == ["id", "note", "price"]
    assert shown == [[str(n), f"row {n}\nsecond line", ""] for n in range(3)]


@pytest.mark.parametrize("cut", [100, 5_000, 14_200, 14_300, 14_800, 15_700])
def test_csv_preview_when_cut_anywhere_then_it_waits_or_shows_only_whole_rows(cut: int) -> None:
    data = _csv(HTML_ROW_LIMIT + 50)

    found = csv_preview(data[:cut], is_complete=False)

    if found is not None:  # ready only once the rows shown are whole: exactly the first HTML_ROW_LIMIT rows
        records = list(csv.reader(io.StringIO(data.decode(), newline="")))
        assert found[0] == records[0]
        assert found[1] == [[*record[:2], ""] for record in records[1 : HTML_ROW_LIMIT + 1]]
    else:
        assert cut < len(data)


def test_csv_preview_when_empty_then_no_columns_and_no_rows() -> None:
    assert csv_preview(b"", is_complete=True) == ([], [])
