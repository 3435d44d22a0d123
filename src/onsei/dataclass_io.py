"""Build nested dataclasses from plain dicts (YAML, JSON) strictly: an unknown key or a value
of the wrong type fails at once, naming the key's dotted path."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from onsei.errors import OptionError

T = TypeVar("T")


def from_dict(cls: type[T], data: Any, path: str = "") -> T:
    """Return ``cls(**data)`` with nested dataclasses built too; check keys and types."""
    if not isinstance(data, dict):
        raise OptionError(f"{path or 'recipe'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(known))
    if unknown:
        where = f"{path}." if path else ""
        raise OptionError(f"unknown key {where}{unknown[0]} (known: {', '.join(sorted(known))})")
    values = {
        name: _convert(hints[name], value, f"{path}.{name}" if path else name)
        for name, value in data.items()
    }
    return cls(**values)


def _convert(hint: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, path)
            except OptionError as error:
                errors.append(str(error))
        raise OptionError(errors[0] if errors else f"{path}: bad value {value!r}")
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, path)
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise OptionError(f"{path}: expected a list, got {value!r}")
        (item,) = typing.get_args(hint)[:1] or (Any,)
        items = [_convert(item, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Any:
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise OptionError(f"{path}: expected {hint.__name__}, got {value!r}")
        return value
    return value


def to_dict(instance: Any) -> dict[str, Any]:
    """Nested dataclass -> plain dict (tuples become lists, ready for YAML/JSON)."""

    def plain(value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(instance))
