"""Typed connector options: each source declares a frozen dataclass, and text is cast against it.

``--source-option KEY=VALUE`` and the first-class flags (``--jetstream-url``, ...) arrive as
strings; :func:`parse_options` casts them to the declared field types (``str``, ``int``,
``float``, ``bool``, ``Path``, ``tuple[str, ...]`` as a comma-separated list, and ``X | None``),
and refuses an unknown key or a malformed value with a :class:`~modstream.errors.ConfigError`
that names the option and the valid ones. Keys may be written with ``-`` or ``_``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from modstream.errors import ConfigError

__all__ = ["option_names", "parse_options", "refuse_argument"]

T = TypeVar("T")
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def option_names(options_type: type[Any]) -> list[str]:
    return [field.name for field in dataclasses.fields(options_type) if field.init]


def refuse_argument(source: str, argument: str | None, *, instead: str) -> None:
    """``--source NAME:ARGUMENT`` for a source that takes none is a usage error."""
    if argument is not None:
        raise ConfigError(f"--source {source} takes no argument (got {argument!r}); {instead}")


def parse_options(options_type: type[T], values: Mapping[str, str], *, source: str) -> T:
    """Build ``options_type`` from text; an unknown key or a bad value is a ConfigError."""
    hints = typing.get_type_hints(options_type)
    names = option_names(options_type)
    kwargs: dict[str, Any] = {}
    for raw_key, text in values.items():
        key = raw_key.strip().replace("-", "_")
        if key not in names:
            valid = ", ".join(name.replace("_", "-") for name in names) or "none"
            raise ConfigError(f"unknown option {raw_key!r} for source {source}; valid: {valid}")
        try:
            kwargs[key] = _cast(hints[key], text)
        except ValueError as exc:
            raise ConfigError(f"bad value for {source} option {raw_key}={text!r}: {exc}") from None
    try:
        return options_type(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"bad {source} options: {exc}") from None


def _cast(hint: Any, text: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if text.strip().lower() in ("", "none"):
            return None
        return _cast(members[0], text)
    if origin is tuple:
        (item, *_rest) = typing.get_args(hint)
        return tuple(_cast(item, part.strip()) for part in text.split(",") if part.strip())
    if hint is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError("expected true or false")
    if hint is int:
        return int(text)
    if hint is float:
        return float(text)
    if hint is Path:
        return Path(text).expanduser()
    if hint is str:
        return text
    raise ValueError(f"options of type {hint!r} are not supported")
