"""The seam every connector implements."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from modstream.pipeline.records import ImageEvent


class Source(Protocol):
    """An asynchronous stream of image events. It ends when the source is exhausted."""

    name: str

    def events(self) -> AsyncIterator[ImageEvent]: ...
