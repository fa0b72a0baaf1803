"""Backfill: replay images an image host already stores (``--source backfill:PATH``).

``PATH`` is a directory (every image file below it, known by its bytes rather than its name, as
``file:`` URLs that the scorer reads only below its file root; other files are counted and logged
with a few examples) or a text file with one image per line: a line with a scheme is a
URL as written (``HTTP://`` included; the scorer refuses schemes it does not fetch as
``invalid_url``), any other line a path relative to the file's folder; blank lines and ``#``
comments are skipped.

The position is the last image's relative path (a directory) or line number (a file), so a
restarted backfill resumes after the last acknowledged image. A progress bar on stderr shows
events/s and the time left. The backfill ends when every image is published.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Self

from tqdm import tqdm

from modstream.connectors.base import Emission, SourceCounters, SourceStatistics
from modstream.errors import ConfigError, SourceError
from modstream.events import ImageEvent, event_id_for
from modstream.imagefiles import Skipped, walk_images

__all__ = [
    "OPTIONS",
    "Backfill",
    "BackfillOptions",
    "backfill_folders",
    "create",
    "scorer_file_root",
    "skipped_line",
    "url_for_line",
]

log = logging.getLogger("modstream.connector")

_EXAMPLES = 3
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True, kw_only=True, slots=True)
class BackfillOptions:
    """``rate``: events/s at most (0: as fast as the broker takes them); ``progress``: a bar."""

    rate: float = 0.0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.rate < 0:
            raise ValueError("rate must not be negative")


@dataclass(frozen=True, slots=True)
class _Item:
    url: str
    position: str
    meta: dict[str, Any]


def url_for_line(line: str, folder: Path) -> str | None:
    """The URL a line of a URL list names, or ``None`` for a blank line or a comment."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    if _SCHEME.match(text) and not re.match(r"^[A-Za-z]:[\\/]", text):  # not a drive letter
        return text
    return (folder / text).resolve().as_uri()


class Backfill:
    name = "backfill"

    def __init__(self, path: Path, options: BackfillOptions) -> None:
        self.path = path
        self.options = options
        self._counters = SourceCounters()

    @property
    def checkpoint_key(self) -> str:
        digest = hashlib.sha256(str(self.path.resolve()).encode()).hexdigest()[:10]
        return f"backfill-{self.path.name or 'root'}-{digest}"

    async def __aenter__(self) -> Self:
        if not self.path.exists():
            raise SourceError(f"backfill: {self.path} does not exist")
        self._counters.connected = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._counters.connected = False

    def statistics(self) -> SourceStatistics:
        return self._counters.snapshot()

    async def emissions(self, resume_from: str | None) -> AsyncIterator[Emission]:
        skipped: list[Skipped] = []
        items = await asyncio.to_thread(self._remaining, resume_from, skipped.append)
        if skipped:
            log.warning("%s", skipped_line(self.path, len(items), skipped))
        interval = 1.0 / self.options.rate if self.options.rate else 0.0
        started = time.monotonic()
        with tqdm(
            total=len(items),
            desc=f"backfill {self.path.name}",
            unit="img",
            file=sys.stderr,
            disable=None if self.options.progress else True,
            dynamic_ncols=True,
        ) as progress:
            for index, item in enumerate(items):
                delay = started + index * interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                event = ImageEvent(
                    id=event_id_for(item.url),
                    url=item.url,
                    source=self.name,
                    observed_at=time.time(),
                    meta=item.meta,
                )
                self._counters.events += 1
                progress.update(1)
                yield Emission((event,), position=item.position)

    def _remaining(
        self, resume_from: str | None, on_skip: Callable[[Skipped], None]
    ) -> list[_Item]:
        """Every image after ``resume_from``, read on a thread (a large tree takes a while)."""
        found = self._directory(on_skip) if self.path.is_dir() else self._lines()
        if resume_from is None:
            return list(found)
        after = self._resume_key(resume_from)
        return [item for item in found if self._resume_key(item.position) > after]

    def _resume_key(self, position: str) -> tuple[Any, ...]:
        if self.path.is_dir():
            return PurePosixPath(position).parts
        return (int(position),)

    def _directory(self, on_skip: Callable[[Skipped], None]) -> Iterator[_Item]:
        root = self.path.resolve()
        for file in walk_images(root, on_skip):
            relative = file.relative_to(root).as_posix()
            yield _Item(url=file.as_uri(), position=relative, meta={"path": relative})

    def _lines(self) -> Iterator[_Item]:
        folder = self.path.resolve().parent
        with self.path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, start=1):
                url = url_for_line(line, folder)
                if url is not None:
                    yield _Item(url=url, position=str(number), meta={"line": number})


def scorer_file_root(
    folders: list[Path], allowed: Path | None, *, scorer_in_process: bool
) -> Path | None:
    """The root below which the scorer reads ``file:`` URLs, for a run backfilling ``folders``.

    A scorer in the same process as one folder backfill reads exactly that folder (no flag
    needed); ``--allow-file-root`` (``allowed``), when given, must contain every folder, and
    several folders need it. What cannot work is a :class:`ConfigError` saying what to add,
    before anything starts. The fetcher keeps its guarantees below the root (``../`` and
    symlinks out of it are ``blocked_path``).
    """
    if not scorer_in_process or not folders:
        return allowed
    real = sorted({folder.resolve() for folder in folders})
    if allowed is None:
        if len(real) > 1:
            listed = ", ".join(str(folder) for folder in real)
            raise ConfigError(
                f"several backfill folders ({listed}): add --allow-file-root DIR with a folder "
                "that contains them all"
            )
        return real[0]
    outside = [folder for folder in real if not folder.is_relative_to(allowed.resolve())]
    if outside:
        raise ConfigError(
            f"the backfill folder {outside[0]} is outside --allow-file-root {allowed}, so the "
            "scorer could read none of its images: drop --allow-file-root (the scorer then reads "
            "exactly the backfill folder) or give a folder that contains it"
        )
    return allowed


def backfill_folders(arguments: list[str]) -> list[Path]:
    """Which ``backfill:PATH`` arguments name folders (a URL list names no root)."""
    return [Path(text).expanduser() for text in arguments if Path(text).expanduser().is_dir()]


def skipped_line(path: Path, images: int, skipped: list[Skipped]) -> str:
    """One log line for the files a backfill passes over: how many, and a few with reasons."""
    root = path.resolve()
    examples = "; ".join(
        f"{item.path.relative_to(root).as_posix()} ({item.reason})" for item in skipped[:_EXAMPLES]
    )
    more = f"; and {len(skipped) - _EXAMPLES} more" if len(skipped) > _EXAMPLES else ""
    found = "1 image" if images == 1 else f"{images} images"
    passed = "1 file" if len(skipped) == 1 else f"{len(skipped)} files"
    return f"backfill {path}: {found} to publish, {passed} skipped (not images): {examples}{more}"


OPTIONS = BackfillOptions


def create(options: BackfillOptions, argument: str | None) -> Backfill:
    if not argument:
        raise ValueError("the backfill source needs a path: --source backfill:PATH")
    return Backfill(Path(argument).expanduser(), options)
