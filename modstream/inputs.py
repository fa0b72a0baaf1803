"""What ``modstream score`` was asked to score: files, directories (recursive) and URLs.

An argument with a scheme (``http://``, ``HTTP://``, ``gopher://``) is a URL, handed to the guarded
fetcher, which refuses schemes other than http(s) as ``invalid_url``; anything else is a path.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from modstream.imagefiles import Skipped, walk_images

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class Input:
    label: str
    url: str | None = None
    path: Path | None = None


def expand(
    arguments: list[str], on_skip: Callable[[Skipped], None] | None = None
) -> Iterator[Input]:
    """Files as given; directories walked recursively for image files (by their bytes), in
    sorted order, every other file of a directory handed to ``on_skip``."""
    for argument in arguments:
        if has_scheme(argument):
            yield Input(label=argument, url=argument)
            continue
        path = Path(argument)
        if path.is_dir():
            for child in walk_images(path, on_skip):
                yield Input(label=str(child), path=child)
        else:
            yield Input(label=argument, path=path)


def has_scheme(text: str) -> bool:
    return _SCHEME.match(text) is not None
