"""Load the settings once, explain what is wrong, and pass them on to child processes."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from tickwave.config.base import CONFIG_FILE_ENV, DEFAULT_CONFIG_FILE, ENV_PREFIX
from tickwave.config.environment import env_name, is_section, is_structured, keys_of
from tickwave.config.settings import Settings, config_file
from tickwave.errors import ConfigurationError


def known_env_names() -> dict[str, str]:
    """Map every ``TICKWAVE_*`` variable of a current key to its dotted key (e.g. ``kafka.port``)."""
    names = {CONFIG_FILE_ENV: "(config file path)"}
    names.update((env_name(key), key) for key in keys_of(Settings))
    return names


def secret_env_names() -> frozenset[str]:
    """The ``TICKWAVE_*`` variables of the secret settings (passwords, keys, the PostgreSQL URL)."""
    return frozenset(env_name(key) for key, field in keys_of(Settings).items() if "SecretStr" in str(field.annotation))


def _check_unknown_env(environ: dict[str, str]) -> list[str]:
    known = known_env_names().keys()
    return [
        f"{var}: unknown setting (known: see `tickwave config show` or docs/configuration.md)"
        for var in sorted(environ)
        if var.upper().startswith(ENV_PREFIX) and var.upper() not in known
    ]


def _env_name(loc: tuple[Any, ...]) -> str:
    return env_name(".".join(str(part) for part in loc))


def _describe_error(error: Any) -> str:
    location = ".".join(str(part) for part in error["loc"])
    variable = _env_name(error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{location}: unknown setting (in {DEFAULT_CONFIG_FILE} or ${CONFIG_FILE_ENV})"
    expected = _expected_form(error["loc"])
    shown = repr(_masked_input(tuple(error["loc"]), error.get("input")))
    return f"{location} ({variable}) = {shown}: {error['msg']}" + (f"; expected {expected}" if expected else "")


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


def _masked_input(loc: tuple[Any, ...], value: Any) -> Any:
    # A section-level error (a model validator) shows the whole section: mask the secrets inside it too.
    if _is_secret(loc):
        return "***"
    if isinstance(value, dict):
        return {key: _masked_input((*loc, key), item) for key, item in value.items()}
    return value


def _is_secret(loc: tuple[Any, ...]) -> bool:
    field = _field_for(loc)
    return field is not None and "SecretStr" in str(field.annotation)


def _undecodable_env(environ: dict[str, str]) -> list[str]:
    """Describe each ``TICKWAVE_*`` variable of a structured setting whose value is not JSON."""
    import json

    problems = []
    for variable, key in known_env_names().items():
        value = next((text for name, text in environ.items() if name.upper() == variable), None)
        field = _field_for(tuple(key.split("."))) if variable != CONFIG_FILE_ENV else None
        if value is None or field is None or not is_structured(field.annotation):
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
        # Name every variable that could not be decoded, not only the first.
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
    """Return the configuration table (one row per key) as Markdown, for docs/configuration.md."""
    lines = [
        "| environment variable | `tickwave.toml` key | default | meaning |",
        "|---|---|---|---|",
    ]
    for key, field in keys_of(Settings).items():
        if is_section(field.annotation):
            continue  # a whole section: its keys have their own rows
        value = field.get_default(call_default_factory=True)
        if isinstance(value, dict):
            value = ", ".join(value)  # a registry (symbols): name its entries
        default = "" if value is None or value == "" else f"`{value}`"
        lines.append(f"| `{env_name(key)}` | `{key}` | {default} | {field.description or ''} |")
    lines.append(f"| `{CONFIG_FILE_ENV}` | | `./{DEFAULT_CONFIG_FILE}` if present | path of the TOML file |")
    return "\n".join(lines) + "\n"


def to_environment(settings: Settings, *, include_secrets: bool = True) -> dict[str, str]:
    """Return ``TICKWAVE_*`` variables that give a child process this exact configuration.

    Used when Tickwave starts its own processes (the dataflow, the execution process), so
    they see what the parent resolved, keyword overrides included. Secrets are passed
    in the child's environment only, never on a command line; with ``include_secrets``
    false they are left out (the warehouse, which receives its passwords by descriptor).
    Every key is passed under its variable, which wins over the one the child inherits.
    """
    import json

    environment: dict[str, str] = {}
    plain = settings.model_dump(mode="json")  # nested models and tuples as JSON-ready data
    for key, field in keys_of(Settings).items():
        if is_section(field.annotation):
            continue
        value: Any = plain
        original: Any = settings
        for part in key.split("."):
            value, original = value[part], getattr(original, part)
        if value is None:
            continue
        if isinstance(original, SecretStr):
            if not include_secrets:
                continue
            text = original.get_secret_value()  # the JSON dump masks secrets
        elif isinstance(value, bool):
            text = str(value).lower()
        elif isinstance(value, list | dict):
            text = json.dumps(value)
        else:
            text = str(value)
        environment[env_name(key)] = text
    environment[f"{ENV_PREFIX}STATE_DIR"] = str(settings.state_path)
    return environment
