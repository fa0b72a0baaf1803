"""People judging items in the real review console, which publishes to ``PREFIX.reviewed``."""

from __future__ import annotations

import asyncio

from polling import until

from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.review.service import ReviewService, ReviewSettings

from .support import default_timings, embedded_timings, unique_group


async def decide_in_console(
    kafka: KafkaSettings, prefix: str, decisions: dict[str, str], *, embedded: bool = True
) -> None:
    """Queue ``PREFIX.review`` and ``PREFIX.flagged`` in a review console of its own group and
    decide each item id of ``decisions`` (``nsfw`` or ``safe``) as reviewer alice."""
    timings = default_timings(ReviewSettings)
    settings = ReviewSettings(
        kafka=kafka, topics=(f"{prefix}.review", f"{prefix}.flagged"),
        reviewed_topic=f"{prefix}.reviewed", group_id=unique_group("review"),
        timings=embedded_timings(timings) if embedded else timings,
        fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"])),
    )  # fmt: skip
    stop = asyncio.Event()
    async with ReviewService(settings) as service:
        task = asyncio.create_task(service.run(stop))
        try:
            pending: set[str] = set()

            def queued() -> bool:
                pending.update(item["id"] for item in service.next_items("alice", 100))
                return set(decisions) <= pending

            await until(queued, "the items in the review queue", timeout_s=60)
            for item_id, label in decisions.items():
                await service.decide(item_id, label, "alice")
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)
