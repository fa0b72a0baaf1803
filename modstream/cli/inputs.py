"""What ``modstream score`` was asked to score: files, directories (recursive) and http(s) URLs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modstream.errors import ImageTooLarge, InputError
from modstream.pipeline.fetch import Fetcher

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


async def fetch_url(fetcher: Fetcher, url: str) -> Loaded:
    fetched = await fetcher.fetch(url)
    return Loaded(body=fetched.body, load_s=fetched.fetch_s)
