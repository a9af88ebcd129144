"""The ``TICKWAVE_*`` environment variables: their names, and the source that reads them.

Every key has one variable: ``TICKWAVE_`` and the key's parts joined by ``_``, upper case
(``execution.risk.max_order_lots`` is ``TICKWAVE_EXECUTION_RISK_MAX_ORDER_LOTS``). The
source looks each variable up in that table rather than splitting names at underscores,
so keys nest at any depth and a key's own underscores are never mistaken for nesting. A
section's variable (``TICKWAVE_KAFKA``) takes a JSON object, which its keys' own variables
override.
"""

from __future__ import annotations

import json
import os
from types import UnionType
from typing import Any, TypeGuard, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsError

from tickwave.config.base import ENV_PREFIX


def env_name(key: str) -> str:
    """Return the variable of a dotted key: ``kafka.port`` -> ``TICKWAVE_KAFKA_PORT``."""
    return (ENV_PREFIX + key.replace(".", "_")).upper()


def is_section(annotation: Any) -> TypeGuard[type[BaseModel]]:
    """Return True when a field's type is a section (a model with keys of its own)."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def keys_of(model: type[BaseModel], prefix: str = "") -> dict[str, FieldInfo]:
    """Map every dotted key of ``model`` to its field, sections before their keys, in declaration order."""
    keys: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        keys[prefix + name] = field
        if is_section(field.annotation):
            keys.update(keys_of(field.annotation, f"{prefix}{name}."))
    return keys


def is_structured(annotation: Any) -> bool:
    """Return True for the types whose variables hold JSON (lists, tables, sections)."""
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(is_structured(arg) for arg in get_args(annotation) if arg is not type(None))
    if origin in (list, tuple, dict, set, frozenset):
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel | list | tuple | dict | set)


def put(data: dict[str, Any], path: list[str], value: Any) -> None:
    """Set ``path`` in nested ``data``; a table's value is merged over the table already there."""
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return  # the section is not a table: its own validation error says so
        node = child
    if isinstance(value, dict) and isinstance(node.get(path[-1]), dict):
        value = {**node[path[-1]], **value}  # a sub-section's variable over its section's JSON
    node[path[-1]] = value


class EnvironmentSource(PydanticBaseSettingsSource):
    """Read the ``TICKWAVE_*`` variables by the table of keys (names are case-insensitive)."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        """Build the table of variables of ``settings_cls``'s keys."""
        super().__init__(settings_cls)
        self._fields = keys_of(settings_cls)
        self._keys = {env_name(key): key for key in self._fields}

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Not used: ``__call__`` reads every variable at once."""
        raise NotImplementedError

    def __call__(self) -> dict[str, Any]:
        """Return the variables' values nested by section, JSON decoded where the key is structured."""
        found = {self._keys[name.upper()]: value for name, value in os.environ.items() if name.upper() in self._keys}
        data: dict[str, Any] = {}
        for key in sorted(found, key=lambda key: key.count(".")):  # a section before its keys
            field = self._fields[key]
            value = found[key]
            if is_structured(field.annotation):
                try:
                    value = json.loads(value)
                except ValueError as exc:
                    raise SettingsError(f"{env_name(key)}: not valid JSON") from exc
            put(data, key.split("."), value)
        return data
