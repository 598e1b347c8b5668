"""Reading the fields of a server frame's JSON: what the contract promises, checked.

Shared by the server codec's decoders; a missing or mistyped field raises
`MalformedFrame`, an absent optional one gives its default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

JsonObject = dict[str, Any]


class MalformedFrame(ValueError):
    """A server frame does not hold what the contract says it must."""


def _field(obj: Mapping[str, Any], name: str) -> Any:
    if name not in obj:
        raise MalformedFrame(f"the server sent no {name!r} (op {obj.get('op')!r})")
    return obj[name]


def _str(obj: Mapping[str, Any], name: str) -> str:
    value = _field(obj, name)
    if not isinstance(value, str):
        raise MalformedFrame(f"{name!r} should be a string, not {type(value).__name__}")
    return value


def _opt_str(obj: Mapping[str, Any], name: str) -> str | None:
    value = obj.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedFrame(f"{name!r} should be a string or null")
    return value


def _int(obj: Mapping[str, Any], name: str) -> int:
    value = _field(obj, name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedFrame(f"{name!r} should be an integer, not {type(value).__name__}")
    return value


def _opt_int(obj: Mapping[str, Any], name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedFrame(f"{name!r} should be an integer or null")
    return value


def _bool(obj: Mapping[str, Any], name: str) -> bool:
    value = obj.get(name, False)
    if not isinstance(value, bool):
        raise MalformedFrame(f"{name!r} should be true or false")
    return value


def _list(obj: Mapping[str, Any], name: str) -> list[Any]:
    value = obj.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedFrame(f"{name!r} should be a list")
    return value


def _object(value: object, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise MalformedFrame(f"{what} should be a JSON object")
    return value


def _opt_object(obj: Mapping[str, Any], name: str) -> JsonObject | None:
    value = obj.get(name)
    return None if value is None else _object(value, repr(name))
