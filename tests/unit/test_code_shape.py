"""The shape report (``make shape``) measures what it says it measures."""

from __future__ import annotations

import textwrap

import pytest

from tests import shape

SOURCE = textwrap.dedent(
    """\
    class Small:
        x = 1


    class Large:
        def method(self) -> int:
            a = 1
            b = 2
            return a + b


    async def loose() -> None:
        pass
    """
)


def test_measure_source_when_classes_and_functions_then_each_is_counted_in_lines() -> None:
    measures = {(m.kind, m.name): m.lines for m in shape.measure_source(SOURCE, "pkg/mod.py")}

    assert measures == {
        ("file", "pkg/mod.py"): 13,
        ("class", "Small"): 2,
        ("class", "Large"): 5,
        ("function", "method"): 4,
        ("function", "loose"): 2,
    }


def test_largest_when_asked_for_two_then_the_two_largest_of_that_kind_come_first() -> None:
    measures = shape.measure_source(SOURCE, "pkg/mod.py")

    assert [m.name for m in shape.largest(measures, "class", 2)] == ["Large", "Small"]
    assert [m.name for m in shape.largest(measures, "function", 1)] == ["method"]


def test_kernel_lines_when_files_inside_and_outside_then_only_the_kernel_is_summed() -> None:
    measures = shape.measure_source(SOURCE, "tickwave/a.py") + shape.measure_source(SOURCE, "streams/tickwave.py")

    assert shape.kernel_lines(measures) == 13


def test_report_when_run_on_the_repository_then_it_prints_every_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert shape.main(["--top", "3"]) == 0

    printed = capsys.readouterr().out
    for heading in ("largest files", "largest classes", "largest functions", "kernel (tickwave/)"):
        assert heading in printed
