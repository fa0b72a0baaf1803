"""Connectors by name, for ``modstream run --source NAME --source-option KEY=VALUE``."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from modstream.connectors.base import Source
from modstream.connectors.synthetic import SyntheticConfig, SyntheticFirehose
from modstream.errors import ConfigError

SourceFactory = Callable[[Mapping[str, str]], Source]


def _synthetic(options: Mapping[str, str]) -> Source:
    urls = tuple(url for url in options.get("urls", "").split(",") if url)
    if not urls:
        raise ConfigError("the synthetic source needs --source-option urls=URL[,URL...]")
    try:
        return SyntheticFirehose(
            SyntheticConfig(
                urls=urls,
                rate_per_s=float(options.get("rate", "20")),
                events=int(options.get("events", "300")),
            )
        )
    except ValueError as exc:
        raise ConfigError(f"bad synthetic source option: {exc}") from exc


SOURCES: dict[str, SourceFactory] = {
    "synthetic": _synthetic,
}


def make_source(name: str, options: Mapping[str, str]) -> Source:
    factory = SOURCES.get(name)
    if factory is None:
        known = ", ".join(sorted(SOURCES))
        raise ConfigError(f"unknown source {name!r}; available: {known}")
    return factory(options)
