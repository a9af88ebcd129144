"""Load the settings once, explain what is wrong, and pass them on to child processes."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr, ValidationError
from pydantic_settings import SettingsError

from tickwave.config.base import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, ENV_PREFIX
from tickwave.config.settings import Settings, config_file
from tickwave.errors import ConfigurationError


def known_env_names() -> dict[str, str]:
    """Map every accepted ``TICKWAVE_*`` variable to its dotted key (e.g. ``kafka.port``)."""
    names = {CONFIG_FILE_ENV: "(config file path)"}
    for name, field in Settings.model_fields.items():
        names[f"{ENV_PREFIX}{name}".upper()] = name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for sub in annotation.model_fields:
                names[f"{ENV_PREFIX}{name}_{sub}".upper()] = f"{name}.{sub}"
    return names


def _check_unknown_env(environ: dict[str, str]) -> list[str]:
    known = known_env_names()
    return [
        f"{var}: unknown setting (known: see `tickwave config show` or the README's configuration table)"
        for var in sorted(environ)
        if var.upper().startswith(ENV_PREFIX) and var.upper() not in known
    ]


def _env_name(loc: tuple[Any, ...]) -> str:
    return (ENV_PREFIX + "_".join(str(part) for part in loc)).upper()


def _describe_error(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"])
    env_name = _env_name(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown setting (in {DEFAULT_CONFIG_FILE} or ${CONFIG_FILE_ENV})"
    expected = _expected_form(error["loc"])
    shown = "***" if _is_secret(error["loc"]) else repr(error.get("input"))
    return f"{location} ({env_name}) = {shown}: {error['msg']}" + (f"; expected {expected}" if expected else "")


def _field_for(loc: tuple[Any, ...]) -> Any:
    model: Any = Settings
    field = None
    for part in loc:
        fields = getattr(model, "model_fields", {})
        if part not in fields:
            return field
        field = fields[part]
        model = field.annotation
    return field


def _expected_form(loc: tuple[Any, ...]) -> str:
    field = _field_for(loc)
    if field is None:
        return ""
    annotation = getattr(field.annotation, "__name__", None) or str(field.annotation)
    description = f" ({field.description})" if field.description else ""
    return f"{annotation}{description}".replace("typing.", "")


def _is_secret(loc: tuple[Any, ...]) -> bool:
    field = _field_for(loc)
    return field is not None and "SecretStr" in str(field.annotation)


def _is_structured(annotation: Any) -> bool:
    """Return True for the types pydantic-settings reads from the environment as JSON."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_is_structured(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin in (list, tuple, dict, set, frozenset):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel | list | tuple | dict | set)


def _undecodable_env(environ: dict[str, str]) -> list[str]:
    """Describe each ``TICKWAVE_*`` variable of a structured setting whose value is not JSON."""
    import json

    problems = []
    for variable, key in known_env_names().items():
        value = next((text for name, text in environ.items() if name.upper() == variable), None)
        field = _field_for(tuple(key.split("."))) if variable != CONFIG_FILE_ENV else None
        if value is None or field is None or not _is_structured(field.annotation):
            continue
        try:
            json.loads(value)
        except ValueError:
            shown = "***" if _is_secret(tuple(key.split("."))) else repr(value)
            problems.append(
                f"{key} ({variable}) = {shown}: not valid JSON; expected {_expected_form(tuple(key.split('.')))} "
                f'as JSON, e.g. ["1m", "1h"] for a list or {{"key": value}} for a table'
            )
    return problems


def load_settings(**overrides: Any) -> Settings:
    """Load and validate the configuration once, at a process's entry point.

    Args:
        **overrides: values that win over every other source (used by tests).

    Returns:
        The frozen settings.

    Raises:
        ConfigurationError: naming every unknown or invalid key and its expected form.
    """
    problems = _check_unknown_env(dict(os.environ))
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except SettingsError:
        # pydantic-settings names only the section; find the variables it could not decode.
        problems.extend(_undecodable_env(dict(os.environ)) or ["the environment: a TICKWAVE_* value is not valid JSON"])
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError) as exc:
        problems.append(f"{config_file()} ({CONFIG_FILE_ENV} or ./{DEFAULT_CONFIG_FILE}): not a valid TOML file: {exc}")
    except ValidationError as exc:
        for error in exc.errors():
            described = _describe_error(error)
            # An unknown TICKWAVE_* variable is reported once, by its variable name.
            if not any(problem.startswith(_env_name(error["loc"]) + ":") for problem in problems):
                problems.append(described)
    if problems or settings is None:
        raise ConfigurationError("invalid configuration:\n  " + "\n  ".join(problems))
    return settings


def masked_settings(settings: Settings) -> dict[str, Any]:
    """Return the effective configuration as plain data with every secret masked."""
    data = settings.model_dump(mode="python")

    def mask(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return "********"
        if isinstance(value, dict):
            return {key: mask(item) for key, item in value.items()}
        if isinstance(value, Path):
            return str(value)
        return value

    return {key: mask(value) for key, value in data.items()}


def reference_markdown() -> str:
    """Return the configuration table (one row per key) as Markdown, for the README."""
    lines = [
        "| environment variable | `tickwave.toml` key | default | meaning |",
        "|---|---|---|---|",
    ]
    for env_name, key in known_env_names().items():
        if env_name == CONFIG_FILE_ENV:
            continue
        section, _, sub = key.partition(".")
        field = Settings.model_fields[section]
        if sub:
            annotation = field.annotation
            assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
            field = annotation.model_fields[sub]
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue  # a whole section: its keys have their own rows
        value = field.get_default(call_default_factory=True)
        if isinstance(value, dict):
            value = ", ".join(value)  # a registry (symbols): name its entries
        default = "" if value is None or value == "" else f"`{value}`"
        lines.append(f"| `{env_name}` | `{key}` | {default} | {field.description or ''} |")
    lines.append(f"| `{CONFIG_FILE_ENV}` | | `./{DEFAULT_CONFIG_FILE}` if present | path of the TOML file |")
    return "\n".join(lines) + "\n"


def to_environment(settings: Settings, *, include_secrets: bool = True) -> dict[str, str]:
    """Return ``TICKWAVE_*`` variables that give a child process this exact configuration.

    Used when Tickwave starts its own processes (the dataflow, the execution process), so
    they see what the parent resolved, keyword overrides included. Secrets are passed
    in the child's environment only, never on a command line; with ``include_secrets``
    false they are left out (the warehouse, which receives its passwords by descriptor).
    """
    import json

    environment: dict[str, str] = {}
    plain = settings.model_dump(mode="json")  # nested models and tuples as JSON-ready data

    def put(name: str, value: Any, original: Any) -> None:
        if value is None:
            return
        if isinstance(original, SecretStr):
            if not include_secrets:
                return
            text = original.get_secret_value()  # the JSON dump masks secrets
        elif isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        environment[(ENV_PREFIX + name).upper()] = text

    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, BaseModel):
            for sub in type(value).model_fields:
                put(f"{name}_{sub}", plain[name][sub], getattr(value, sub))
        else:
            put(name, plain[name], value)
    environment[f"{ENV_PREFIX}STATE_DIR"] = str(settings.state_path)
    return environment
