"""``python -m execution [audit]``: any other argument is refused before anything starts."""

from __future__ import annotations

import pytest

from execution.__main__ import USAGE, main


@pytest.mark.parametrize("arguments", [["run"], ["audit", "--now"], ["halt"]])
def test_main_when_an_unknown_argument_then_usage_and_exit_2(
    arguments: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    # Act
    code = main(arguments)

    # Assert
    assert code == 2
    assert capsys.readouterr().err.strip() == USAGE
