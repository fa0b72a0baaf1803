"""Which connectors ``modstream run`` starts, with which options: a pure reading of the flags.

``--source NAME[:ARGUMENT]`` is repeatable. ``--source-option KEY=VALUE`` goes to every given
source that declares KEY (with one source, to that source, which refuses keys it does not know);
``--source-option NAME.KEY=VALUE`` goes to source NAME only. The first-class flags
(``--jetstream-url``, ``--webhook-port``, ...) are shorthands for options of one source.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

from modstream.connectors.registry import SourceSpec, parse_source_spec, source_option_names
from modstream.errors import ConfigError

__all__ = ["FLAG_OPTIONS", "source_requests"]

# argparse dest -> (source, option)
FLAG_OPTIONS: dict[str, tuple[str, str]] = {
    "jetstream_url": ("jetstream", "url"),
    "bsky_image_base_url": ("jetstream", "image_base_url"),
    "mastodon_url": ("mastodon", "url"),
    "webhook_host": ("webhook", "host"),
    "webhook_port": ("webhook", "port"),
    "object_base_url": ("webhook", "object_base_url"),
}


def source_requests(
    args: argparse.Namespace,
    *,
    declared: Callable[[str], Sequence[str]] = source_option_names,
) -> list[tuple[SourceSpec, dict[str, str]]]:
    specs = [parse_source_spec(text) for text in args.source or []]
    names = {spec.name for spec in specs}
    options: dict[str, dict[str, str]] = {name: {} for name in names}
    for dest, (name, option) in FLAG_OPTIONS.items():
        value = getattr(args, dest, None)
        if value is None:
            continue
        if name not in names:
            flag = "--" + dest.replace("_", "-")
            raise ConfigError(f"{flag} is an option of --source {name}, which is not running")
        options[name][option] = str(value)
    for text in args.source_option:
        key, equals, value = text.partition("=")
        if not equals or not key:
            raise ConfigError(f"--source-option {text!r} is not KEY=VALUE")
        scope, dot, bare = key.partition(".")
        if dot and scope in names:
            options[scope][bare] = value
            continue
        if len(names) == 1:
            options[next(iter(names))][key] = value
            continue
        takers = [name for name in names if key.replace("-", "_") in declared(name)]
        if not takers:
            raise ConfigError(
                f"no running source has an option {key!r} (--source-option {text!r}); sources: "
                f"{', '.join(sorted(names)) or 'none'}"
            )
        for name in takers:
            options[name][key] = value
    return [(spec, dict(options[spec.name])) for spec in specs]
