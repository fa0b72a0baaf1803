"""Reading topics with no consumer group and nothing committed: a reader disturbs no one.

:func:`read_topic` reads a topic from its beginning (or the last ``N`` records of each
partition) to (at least) the end offsets it has when the read starts, and never waits for new
records:
what ``review --export``, ``eval --results kafka:`` and a review console's start-up read back.
:func:`read_topics` does the same for several topics, and with ``follow`` goes on as records
arrive: what ``modstream results`` prints.
:func:`follow` reads topics from their beginning and goes on as records arrive: the demo's
watcher.

Every reader reads ``read_committed``: a transaction's records once it commits, an aborted one's
never (the scorers' exactly-once delivery); records written without transactions read as ever.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from modstream.errors import ConfigError
from modstream.kafka.access import check_access, start_client, stop_client
from modstream.kafka.settings import KafkaSettings

__all__ = ["Follower", "follow", "read_topic", "read_topics"]


async def read_topic(
    kafka: KafkaSettings, topic: str, *, last: int | None = None
) -> AsyncIterator[bytes]:
    """Each record value of ``topic`` up to its current end (the last ``last`` per partition)."""
    async for _topic, value in read_topics(kafka, [topic], last=last):
        yield value


async def read_topics(
    kafka: KafkaSettings,
    topics: Sequence[str],
    *,
    last: int | None = None,
    follow: bool = False,
    role: str = "reader",
) -> AsyncIterator[tuple[str, bytes]]:
    """(topic, value) of each record of ``topics`` from their beginning (the last ``last`` per
    partition): up to the end offsets they have now, or, with ``follow``, on as records arrive
    until the caller stops iterating. A topic that does not exist is a :class:`ConfigError`
    before anything is read; a cluster nothing answers on is :class:`BrokerUnavailable`."""
    await check_access(kafka)
    consumer = AIOKafkaConsumer(
        **kafka.client_options(role), enable_auto_commit=False, auto_offset_reset="earliest",
        fetch_max_wait_ms=100 if follow else 500, isolation_level="read_committed",
    )  # fmt: skip
    await start_client(consumer)
    try:
        partitions = await _partitions_of(consumer, kafka, topics)
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
        # Every record fetched is yielded, also past the end offsets: tansu 0.6 (the embedded
        # broker) answers ListOffsets(latest) with the base offset of a partition's last batch
        # plus one, so the rest of that batch lies beyond the "end". A fetch returns whole
        # batches, so reading until each position has reached its end reads every record.
        while follow or await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=500)
            for partition, messages in batches.items():
                for message in messages:
                    if message.value is not None:
                        yield partition.topic, message.value
    finally:
        await stop_client(consumer)


async def _partitions_of(
    consumer: AIOKafkaConsumer, kafka: KafkaSettings, topics: Sequence[str]
) -> list[TopicPartition]:
    """Every partition of ``topics``; a missing topic is named, with the cluster it is not on."""
    # A fresh client knows no topics yet; the public topics() returns names without
    # updating the metadata partitions_for_topic reads, so ask the client directly.
    await consumer._client.force_metadata_update()
    partitions: list[TopicPartition] = []
    missing: list[str] = []
    for topic in topics:
        numbers = consumer.partitions_for_topic(topic) or set()
        if not numbers:
            missing.append(topic)
        partitions += [TopicPartition(topic, number) for number in sorted(numbers)]
    if missing:
        names = ", ".join(missing)
        verb = "does" if len(missing) == 1 else "do"
        raise ConfigError(f"topic {names} {verb} not exist on {kafka.bootstrap_servers}")
    return partitions


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
        isolation_level="read_committed",
    )
    await start_client(consumer)
    try:
        yield Follower(consumer)
    finally:
        await stop_client(consumer)
