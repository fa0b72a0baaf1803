"""A synthetic firehose: image URLs at a steady rate, for the demo and for load tests."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from modstream.pipeline.records import ImageEvent


@dataclass(frozen=True, kw_only=True, slots=True)
class SyntheticConfig:
    urls: tuple[str, ...]
    rate_per_s: float = 20.0
    events: int = 300
    unique: bool = True  # add ?<query_key>=<i> so that the URL cache does not answer repeats
    query_key: str = "n"
    # Every N-th event repeats the previous event's URL, like a repost (0: never).
    repost_every: int = 0


class SyntheticFirehose:
    name = "synthetic"

    def __init__(self, config: SyntheticConfig) -> None:
        if not config.urls:
            raise ValueError("the synthetic firehose needs at least one URL")
        self.config = config

    async def events(self) -> AsyncIterator[ImageEvent]:
        interval = 1.0 / self.config.rate_per_s
        start = time.monotonic()
        urls: Sequence[str] = self.config.urls
        previous: str | None = None
        repost_every = self.config.repost_every
        for index, base in zip(range(self.config.events), itertools.cycle(urls), strict=False):
            # Paced against the start time, so the rate holds however long each send takes.
            delay = start + index * interval - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if previous is not None and repost_every and index % repost_every == 0:
                url = previous
            elif self.config.unique:
                url = f"{base}{'&' if '?' in base else '?'}{self.config.query_key}={index}"
            else:
                url = base
            previous = url
            yield ImageEvent(
                id=f"synthetic-{index}",
                url=url,
                source=self.name,
                observed_at=time.time(),
                meta={"sequence": index},
            )
