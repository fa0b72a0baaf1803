"""What ``modstream score`` was asked to score: files, directories (recursive) and http(s) URLs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Self

from modstream.errors import ImageTooLarge, InputError

if TYPE_CHECKING:
    from modstream.pipeline.fetch import FetchConfig, Fetcher

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif"}
)


class InputNotFound(InputError):
    kind = "not_found"


@dataclass(frozen=True, slots=True)
class Input:
    label: str
    url: str | None = None
    path: Path | None = None


@dataclass(frozen=True, slots=True)
class Loaded:
    body: bytes
    load_s: float


def expand(arguments: list[str]) -> Iterator[Input]:
    """Files as given; directories walked recursively for image files, in sorted order."""
    for argument in arguments:
        if argument.startswith(("http://", "https://")):
            yield Input(label=argument, url=argument)
            continue
        path = Path(argument)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() in IMAGE_SUFFIXES:
                    yield Input(label=str(child), path=child)
        else:
            yield Input(label=argument, path=path)


def read_file(path: Path, max_bytes: int) -> Loaded:
    """Read a local file (on a worker thread), refusing oversized files before reading them."""
    started = time.perf_counter()
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageTooLarge(f"the file is {size} bytes, more than the {max_bytes}-byte limit")
        body = path.read_bytes()
    except FileNotFoundError:
        raise InputNotFound(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputNotFound(f"not a file: {path}") from None
    except PermissionError as exc:
        raise InputNotFound(f"cannot read {path}: {exc.strerror}") from None
    return Loaded(body=body, load_s=time.perf_counter() - started)


class InputLoader:
    """Reads files on a worker thread; fetches URLs with a guarded fetcher opened on first use."""

    def __init__(self, fetch_config: FetchConfig, max_bytes: int) -> None:
        self._fetch_config = fetch_config
        self._max_bytes = max_bytes
        self._fetcher: Fetcher | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._fetcher is not None:
            await self._fetcher.aclose()

    async def load(self, item: Input) -> tuple[str, Loaded]:
        """``("read" | "fetch", bytes and time taken)``; raises an :class:`InputError`."""
        if item.url is None:
            assert item.path is not None
            return "read", await asyncio.to_thread(read_file, item.path, self._max_bytes)
        if self._fetcher is None:
            from modstream.pipeline.fetch import Fetcher  # aiohttp loads only for URLs

            self._fetcher = Fetcher(self._fetch_config)
        fetched = await self._fetcher.fetch(item.url)
        return "fetch", Loaded(body=fetched.body, load_s=fetched.fetch_s)
