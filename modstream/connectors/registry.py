"""Connectors by name, loaded lazily: ``modstream --help`` imports none of them.

A source module exposes ``OPTIONS`` (a frozen dataclass type: its typed options) and
``create(options, argument) -> Source``. ``argument`` is the text after the colon in
``--source NAME:ARGUMENT`` (``backfill:/srv/images``), or ``None``. Every source also takes
``restart`` (:data:`RESTART`): start over, ignoring its checkpoint (:mod:`.resume`).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType

from modstream.connectors.base import Source
from modstream.connectors.options import option_names, parse_options
from modstream.connectors.resume import Restarting
from modstream.errors import ConfigError

__all__ = [
    "RESTART",
    "SOURCES",
    "SourceSpec",
    "make_source",
    "parse_source_spec",
    "source_option_names",
]

SOURCES: dict[str, str] = {
    "backfill": "modstream.connectors.backfill",
    "jetstream": "modstream.connectors.jetstream",
    "mastodon": "modstream.connectors.mastodon",
    "synthetic": "modstream.connectors.synthetic",
    "webhook": "modstream.connectors.webhook",
}


RESTART = "restart"


@dataclass(frozen=True, slots=True)
class _Restart:
    restart: bool = False


@dataclass(frozen=True, slots=True)
class SourceSpec:
    name: str
    argument: str | None = None

    def __str__(self) -> str:
        return self.name if self.argument is None else f"{self.name}:{self.argument}"


def parse_source_spec(text: str) -> SourceSpec:
    name, colon, argument = text.partition(":")
    if name not in SOURCES:
        raise ConfigError(f"unknown source {name!r}; available: {', '.join(sorted(SOURCES))}")
    return SourceSpec(name=name, argument=argument if colon else None)


def _module(name: str) -> ModuleType:
    return importlib.import_module(SOURCES[name])


def source_option_names(name: str) -> list[str]:
    return [*option_names(_module(name).OPTIONS), RESTART]


def make_source(spec: SourceSpec, options: Mapping[str, str]) -> Source:
    """Cast ``options`` against the source's declared options and build it."""
    module = _module(spec.name)
    names = source_option_names(spec.name)
    for key in options:
        if _bare(key) not in names:
            valid = ", ".join(name.replace("_", "-") for name in names)
            raise ConfigError(f"unknown option {key!r} for source {spec.name}; valid: {valid}")
    own = {key: value for key, value in options.items() if _bare(key) != RESTART}
    common = {key: value for key, value in options.items() if _bare(key) == RESTART}
    parsed = parse_options(module.OPTIONS, own, source=spec.name)
    source: Source = module.create(parsed, spec.argument)
    if parse_options(_Restart, common, source=spec.name).restart:
        return Restarting(source)
    return source


def _bare(key: str) -> str:
    return key.strip().replace("-", "_")
