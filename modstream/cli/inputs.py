"""What ``modstream score`` was asked to score: files, directories (recursive) and URLs.

An argument with a scheme (``http://``, ``HTTP://``, ``gopher://``) is a URL, handed to the guarded
fetcher, which refuses schemes other than http(s) as ``invalid_url``; anything else is a path.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

from modstream.imagefiles import walk_images

if TYPE_CHECKING:
    from modstream.pipeline.fetch import FetchConfig, Fetcher

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


@dataclass(frozen=True, slots=True)
class Input:
    label: str
    url: str | None = None
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class Loaded:
    body: bytes | Path
    load_s: float


def expand(arguments: list[str]) -> Iterator[Input]:
    """Files as given; directories walked recursively for image files, in sorted order."""
    for argument in arguments:
        if has_scheme(argument):
            yield Input(label=argument, url=argument)
            continue
        path = Path(argument)
        if path.is_dir():
            for child in walk_images(path):
                yield Input(label=str(child), path=child)
        else:
            yield Input(label=argument, path=path)


def has_scheme(text: str) -> bool:
    return _SCHEME.match(text) is not None


class InputLoader:
    """Hands files to the scorer by path; fetches URLs with a fetcher opened on first use."""

    def __init__(self, fetch_config: FetchConfig) -> None:
        self._fetch_config = fetch_config
        self._fetcher: Fetcher | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()

    async def load(self, item: Input) -> Loaded:
        """The bytes of a URL, or a file's path (the scorer reads it on its decode pool)."""
        if item.url is None:
            assert item.path is not None
            return Loaded(body=item.path, load_s=0.0)
        if self._fetcher is None:
            from modstream.pipeline.fetch import Fetcher  # aiohttp loads only for URLs

            self._fetcher = Fetcher(self._fetch_config)
        fetched = await self._fetcher.fetch(item.url)
        return Loaded(body=fetched.body, load_s=fetched.fetch_s)
