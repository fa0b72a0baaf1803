"""A synthetic firehose: image URLs at a steady rate, for the demo and for load tests.

A load generator starts from its first event every time. With ``resume=true`` it reports its
position (the index of the next event), so a restarted connector carries on where the acknowledged
events stopped; the checkpoint is keyed by the URLs and the event count.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Self

from modstream.connectors.base import Emission, SourceCounters, SourceStatistics
from modstream.events import ImageEvent

__all__ = ["OPTIONS", "SyntheticConfig", "SyntheticFirehose", "SyntheticOptions", "create"]


@dataclass(frozen=True, kw_only=True, slots=True)
class SyntheticOptions:
    """``--source synthetic``: ``urls=URL[,URL...]``, ``rate`` (events/s), ``events`` (total),
    ``resume`` (carry on from a saved position after a restart)."""

    urls: tuple[str, ...] = ()
    rate: float = 20.0
    events: int = 300
    resume: bool = False

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError("the synthetic source needs --source-option urls=URL[,URL...]")
        if self.rate <= 0 or self.events < 0:
            raise ValueError("rate must be positive and events not negative")


@dataclass(frozen=True, kw_only=True, slots=True)
class SyntheticConfig:
    urls: tuple[str, ...]
    rate_per_s: float = 20.0
    events: int = 300
    unique: bool = True  # add ?<query_key>=<i> so that the URL cache does not answer repeats
    query_key: str = "n"
    # Every N-th event repeats the previous event's URL, like a repost (0: never).
    repost_every: int = 0
    resume: bool = False


class SyntheticFirehose:
    name = "synthetic"

    def __init__(self, config: SyntheticConfig) -> None:
        if not config.urls:
            raise ValueError("the synthetic firehose needs at least one URL")
        self.config = config
        self._counters = SourceCounters()

    @property
    def checkpoint_key(self) -> str:
        digest = hashlib.sha256(repr((self.config.urls, self.config.events)).encode())
        return f"synthetic-{digest.hexdigest()[:10]}"

    async def __aenter__(self) -> Self:
        self._counters.connected = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._counters.connected = False

    def statistics(self) -> SourceStatistics:
        return self._counters.snapshot()

    async def emissions(self, resume_from: str | None = None) -> AsyncIterator[Emission]:
        resume = self.config.resume
        first = int(resume_from) if resume and resume_from else 0
        async for index, event in self._events(first):
            self._counters.events += 1
            yield Emission((event,), position=str(index + 1) if resume else None)

    async def events(self) -> AsyncIterator[ImageEvent]:
        """The events alone, from the first (for tests and tools that need no positions)."""
        async for _index, event in self._events(0):
            yield event

    async def _events(self, first: int) -> AsyncIterator[tuple[int, ImageEvent]]:
        config = self.config
        interval = 1.0 / config.rate_per_s
        start = time.monotonic()
        previous: str | None = None
        bases = itertools.islice(itertools.cycle(config.urls), first, None)
        for step, (index, base) in enumerate(zip(range(first, config.events), bases, strict=False)):
            # Paced against the start time, so the rate holds however long each send takes.
            delay = start + step * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if previous is not None and config.repost_every and index % config.repost_every == 0:
                url = previous
            elif config.unique:
                url = f"{base}{'&' if '?' in base else '?'}{config.query_key}={index}"
            else:
                url = base
            previous = url
            yield (
                index,
                ImageEvent(
                    id=f"synthetic-{index}",
                    url=url,
                    source=self.name,
                    observed_at=time.time(),
                    meta={"sequence": index},
                ),
            )


OPTIONS = SyntheticOptions


def create(options: SyntheticOptions, argument: str | None) -> SyntheticFirehose:
    return SyntheticFirehose(
        SyntheticConfig(
            urls=options.urls,
            rate_per_s=options.rate,
            events=options.events,
            resume=options.resume,
        )
    )
