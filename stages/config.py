"""Strict parsing of params.yaml sections into frozen dataclasses.

A key nothing reads is a bug waiting to happen (a misspelled `temprature` silently keeps
the default), so an unknown key, a wrong type or a missing section is a one-line error
naming the section and the key.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from .errors import SuperalignError

T = TypeVar("T")


def parse_section(cls: type[T], data: Any, section: str) -> T:
    """Build dataclass `cls` from the mapping `data`, rejecting unknown keys and bad types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SuperalignError(f"params: section '{section}' must be a mapping, got {_kind(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise SuperalignError(
            f"params: unknown key '{unknown[0]}' in section '{section}' "
            f"(known keys: {', '.join(sorted(fields))})"
        )
    hints = typing.get_type_hints(cls)
    values = {
        name: _coerce(hints[name], value, f"{section}.{name}") for name, value in data.items()
    }
    try:
        return cls(**values)
    except TypeError as exc:  # a required field without a default
        raise SuperalignError(f"params: section '{section}': {exc}") from None
    except ValueError as exc:  # __post_init__ range checks
        raise SuperalignError(f"params: {section}: {exc}") from None


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _coerce(option, value, where)
            except SuperalignError as exc:
                errors.append(str(exc))
        raise SuperalignError(errors[0])
    if origin is typing.Literal:
        if value not in args:
            choices = ", ".join(repr(a) for a in args)
            raise SuperalignError(f"params: {where} must be one of {choices}, got {value!r}")
        return value
    if dataclasses.is_dataclass(hint):
        return parse_section(hint, value, where)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise SuperalignError(f"params: {where} must be a list, got {_kind(value)}")
        item = args[0] if args else Any
        return tuple(_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SuperalignError(f"params: {where} must be a mapping, got {_kind(value)}")
        key_t, val_t = args or (Any, Any)
        return {
            _coerce(key_t, k, where): _coerce(val_t, v, f"{where}.{k}") for k, v in value.items()
        }
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise SuperalignError(f"params: {where} must be {hint.__name__}, got a boolean")
    if isinstance(hint, type) and not isinstance(value, hint):
        raise SuperalignError(f"params: {where} must be {hint.__name__}, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r}"[:80]
