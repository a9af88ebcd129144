"""Configuration fuzzing: any string in any setting's variable gives a valid
configuration or the one clean ConfigurationError naming the key, never another exception."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tickwave.config import Settings, known_env_names, load_settings
from tickwave.errors import ConfigurationError

VARIABLES = sorted(known_env_names().items())
# Environment values are C strings: no NUL, no lone surrogates.
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40)
NEAR_MISSES = st.sampled_from(
    [
        "",
        " ",
        "1m,1h",
        '["1m","1h"]',
        '["2h"]',
        "[]",
        "{}",
        '{"a": 1}',
        "null",
        "true",
        "-1",
        "0",
        "1e400",
        "nan",
        '"x"',
        "[1, 2]",
        '{"EURUSD": {"digits": 5}}',
        "H4",
        "17:60",
        "Mars/Olympus",
        "99999999999999999999",
    ]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(variable=st.sampled_from(VARIABLES), value=st.one_of(TEXT, NEAR_MISSES))
def test_load_settings_when_any_variable_holds_any_string_then_valid_or_one_clean_error(
    variable: tuple[str, str], value: str
) -> None:
    name, key = variable
    with pytest.MonkeyPatch.context() as patch:
        for existing in list(os.environ):
            if existing.upper().startswith("TICKWAVE_"):
                patch.delenv(existing)
        patch.setenv(name, value)
        try:
            result = load_settings()
        except ConfigurationError as exc:
            message = str(exc)
            assert name in message or key.split(".")[0] in message, message
            assert "Traceback" not in message
            return
    assert isinstance(result, Settings)
