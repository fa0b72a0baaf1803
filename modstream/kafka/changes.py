"""A compacted topic read as a changelog: keys and tombstones included, to its end, then live.

What a scorer does with the bank topic: :meth:`Changes.to_end` returns every record up to the end
offsets the topic had when reading began (a scorer starts matching only with every bank entry
known so far), :meth:`Changes.next_batch` what arrived since. No consumer group: each scorer reads
the whole topic, as each needs the whole state. A record's value is ``None`` for a tombstone (the
key's removal).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from modstream.errors import BrokerUnavailable, ConfigError
from modstream.kafka.access import start_client, stop_client
from modstream.kafka.settings import KafkaSettings

__all__ = ["Change", "Changes", "changes", "read_log"]

Change = tuple[bytes, bytes | None]  # (key, value; None: removed)


class Changes:
    def __init__(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        self._consumer = consumer
        self._partitions = partitions

    async def to_end(self) -> list[Change]:
        """Every record from the beginning to the end offsets the topic has now."""
        return [change async for batch in self.batches_to_end() for change in batch]

    async def batches_to_end(self) -> AsyncIterator[list[Change]]:
        """:meth:`to_end` fetch by fetch, for a reader that applies each as it comes (a large
        topic is never held whole in memory)."""
        consumer = self._consumer
        ends = await consumer.end_offsets(self._partitions)
        # A fetch returns whole batches, so reading until every position reaches its end reads
        # every record (the embedded broker's end offset can lie inside its last batch).
        while any([await consumer.position(p) < end for p, end in ends.items()]):
            batch = _changes(await consumer.getmany(timeout_ms=500))
            if batch:
                yield batch

    async def answered(self, *, timeout_s: float) -> bool:
        """Does the broker answer now (the topic's end offsets, within ``timeout_s``)?"""
        try:
            async with asyncio.timeout(timeout_s):
                await self._consumer.end_offsets(self._partitions)
        except (TimeoutError, KafkaError, OSError):
            return False
        return True

    async def next_batch(self, *, timeout_s: float) -> list[Change]:
        """The records that arrived, waiting up to ``timeout_s`` for one; raises
        :class:`BrokerUnavailable` while the broker is away (the client reconnects)."""
        timeout_ms = max(round(timeout_s * 1000), 1)
        try:
            return _changes(await self._consumer.getmany(timeout_ms=timeout_ms))
        except KafkaError as exc:
            raise BrokerUnavailable(
                f"reading {', '.join(sorted({p.topic for p in self._partitions}))}: {exc}"
            ) from exc


def _changes(batches: dict[TopicPartition, list[object]]) -> list[Change]:
    return [
        (message.key or b"", message.value)  # type: ignore[attr-defined]
        for messages in batches.values()
        for message in messages
    ]


@contextlib.asynccontextmanager
async def changes(kafka: KafkaSettings, topic: str, *, role: str) -> AsyncIterator[Changes]:
    """Read ``topic`` from its beginning for as long as the block runs."""
    consumer = AIOKafkaConsumer(
        **kafka.client_options(role), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=100, isolation_level="read_committed",
    )  # fmt: skip
    await start_client(consumer)
    try:
        await consumer._client.force_metadata_update()  # a fresh client knows no topics yet
        numbers = consumer.partitions_for_topic(topic) or set()
        if not numbers:
            raise ConfigError(f"topic {topic} does not exist on {kafka.bootstrap_servers}")
        partitions = [TopicPartition(topic, number) for number in sorted(numbers)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        yield Changes(consumer, partitions)
    finally:
        await stop_client(consumer)


async def read_log(kafka: KafkaSettings, topic: str, *, role: str) -> list[tuple[int, bytes]]:
    """(offset, value) of every record of a one-partition log topic, up to its end now: what
    a single writer (the labeler) reads back at start to continue its sequence."""
    consumer = AIOKafkaConsumer(
        **kafka.client_options(role), group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=100, isolation_level="read_committed",
    )  # fmt: skip
    await start_client(consumer)
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning(partition)
        end = (await consumer.end_offsets([partition]))[partition]
        read: list[tuple[int, bytes]] = []
        while await consumer.position(partition) < end:
            for messages in (await consumer.getmany(timeout_ms=500)).values():
                read += [(m.offset, m.value) for m in messages if m.value is not None]
        return read
    finally:
        await stop_client(consumer)
