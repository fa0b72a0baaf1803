"""Read a topic to its end: what ``review --export``, ``eval --results kafka:`` and a console's
start-up read back.

Reads a topic from its beginning (or the last ``N`` records of each partition) to the end offsets
it has when the read starts, with no consumer group and nothing committed: a read never waits
for new records and never disturbs anyone.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from modstream.errors import ConfigError
from modstream.kafka.access import start_client
from modstream.kafka.settings import KafkaSettings

__all__ = ["read_topic"]


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
