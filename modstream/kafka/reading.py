"""Reading topics with no consumer group and nothing committed: a reader disturbs no one.

:func:`read_topic` reads a topic from its beginning (or the last ``N`` records of each
partition) to the end offsets it has when the read starts, and never waits for new records:
what ``review --export``, ``eval --results kafka:`` and a review console's start-up read back.
:func:`follow` reads topics from their beginning and goes on as records arrive: the demo's
watcher.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from modstream.errors import ConfigError
from modstream.kafka.access import start_client
from modstream.kafka.settings import KafkaSettings

__all__ = ["Follower", "follow", "read_topic"]


async def read_topic(
    kafka: KafkaSettings, topic: str, *, last: int | None = None
) -> AsyncIterator[bytes]:
    """Each record value of ``topic`` up to its current end (the last ``last`` per partition)."""
    consumer = AIOKafkaConsumer(
        **kafka.client_options("reader"), enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await start_client(consumer)
    try:
        # A fresh client knows no topics yet; the public topics() returns names without
        # updating the metadata partitions_for_topic reads, so ask the client directly.
        await consumer._client.force_metadata_update()
        numbers = consumer.partitions_for_topic(topic) or set()
        if not numbers:
            raise ConfigError(f"topic {topic} does not exist")
        partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for partition in partitions:
            begin = (
                starts[partition]
                if last is None
                else max(starts[partition], ends[partition] - last)
            )
            consumer.seek(partition, begin)  # fmt: skip
        while await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=500)
            for partition, messages in batches.items():
                for message in messages:
                    if message.offset < ends[partition] and message.value is not None:
                        yield message.value
    finally:
        with contextlib.suppress(KafkaError):
            await consumer.stop()


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    """Whether any partition has not been read up to its end offset yet."""
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False


class Follower:
    """Records of the followed topics as they arrive: ``await follower.next_batch()``."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    async def next_batch(self, *, timeout_s: float) -> list[tuple[str, bytes]]:
        """(topic, value) of the records that arrived, waiting up to ``timeout_s`` for one."""
        batches = await self._consumer.getmany(timeout_ms=max(round(timeout_s * 1000), 1))
        return [
            (partition.topic, message.value)
            for partition, messages in batches.items()
            for message in messages
            if message.value is not None
        ]


@contextlib.asynccontextmanager
async def follow(
    kafka: KafkaSettings, topics: Sequence[str], *, role: str
) -> AsyncIterator[Follower]:
    """Follow ``topics`` from their beginning for as long as the block runs."""
    consumer = AIOKafkaConsumer(
        *topics,
        **kafka.client_options(role),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await start_client(consumer)
    try:
        yield Follower(consumer)
    finally:
        with contextlib.suppress(KafkaError, OSError):
            await asyncio.shield(consumer.stop())
