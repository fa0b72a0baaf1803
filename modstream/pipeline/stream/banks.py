"""The bank topic followed: hash banks every scorer shares, in one compacted Kafka topic.

Its records are :mod:`modstream.pipeline.match.records`. ``modstream bank add|remove|import|
export`` and ``modstream review --bank-decisions`` write it; every scorer started with
``--bank-topic`` reads it to its end before it consumes an image, then follows it, so an entry
reaches every scorer within about a second (the time to rebuild the changed bank's index, off
the event loop).

    records -> BankTopicState.apply (pure: which banks changed) -> rebuild those banks' indexes
            -> Matcher.install(bank, BankPart.TOPIC, ...)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from modstream.backoff import Backoff, BackoffPolicy
from modstream.errors import BrokerUnavailable
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.changes import changes
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.match.matcher import BankPart, LoadedBank, Matcher
from modstream.pipeline.match.records import BankTopicState

__all__ = ["ensure_bank_topic", "following_banks"]

log = logging.getLogger("modstream.banks")


async def _install(state: BankTopicState, banks: set[str], matcher: Matcher) -> None:
    for bank in sorted(banks):
        loaded = await asyncio.to_thread(LoadedBank.build, state.entries(bank))
        matcher.install(bank, BankPart.TOPIC, loaded)
        log.info("hash bank %s: %s from the bank topic", bank, loaded.entries.describe())
    matcher.released = state.released()


@contextlib.asynccontextmanager
async def following_banks(
    kafka: KafkaSettings, topic: str, matcher: Matcher
) -> AsyncIterator[BankTopicState]:
    """The bank topic read to its end into ``matcher``, then followed while the block runs."""
    state = BankTopicState()
    async with changes(kafka, topic, role="banks") as reader:
        await _install(state, state.apply(await reader.to_end()), matcher)

        async def follow() -> None:
            backoff = Backoff(BackoffPolicy(initial_s=0.5, max_s=5.0))
            while True:
                try:
                    batch = await reader.next_batch(timeout_s=1.0)
                except BrokerUnavailable as exc:  # the client reconnects; say so and go on
                    delay = backoff.next_delay()
                    log.warning("reading the bank topic %s: %s; again in %.1f s", topic, exc, delay)
                    await asyncio.sleep(delay)
                    continue
                backoff.reset()
                changed = state.apply(batch)
                if changed:
                    await _install(state, changed, matcher)

        task = asyncio.create_task(follow(), name="modstream-bank-topic")
        try:
            yield state
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def ensure_bank_topic(kafka: KafkaSettings, topic: str, replication_factor: int = 1) -> None:
    """Create the bank topic (one partition, compacted) if it does not exist yet."""
    await ensure_topics(
        kafka, [TopicSpec(topic, 1, compacted=True)], replication_factor=replication_factor
    )
