"""Kafka helpers for the integration tests: produce, read the output topics, compare offsets."""

from __future__ import annotations

import asyncio
import dataclasses
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Self

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import RecordMetadata

from modstream.kafka.settings import GroupTimings
from modstream.pipeline.stream.topics import Topics


def embedded_timings(base: GroupTimings | None = None, **changes: float) -> GroupTimings:
    """``base`` (default: a group member's usual timings) with the embedded broker's short
    session (tansu makes each join wait about half of it) and fetch wait (it waits out most of
    a fetch), and any other ``changes``."""
    return dataclasses.replace(
        base or GroupTimings(), session_timeout_s=2.0, fetch_max_wait_s=0.02, **changes
    )  # type: ignore[arg-type]


def default_timings(settings: type) -> GroupTimings:
    """The timings a settings class gives its consumer by default (the review console's, ...)."""
    factory = settings.__dataclass_fields__["timings"].default_factory
    return factory()  # type: ignore[no-any-return]


def unique_topics(label: str) -> Topics:
    """Topic names no other test uses on the shared broker."""
    return Topics.with_prefix(f"it-{label}-{uuid.uuid4().hex[:10]}")


def unique_group(label: str) -> str:
    return f"it-{label}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True, slots=True)
class Sent:
    value: bytes | None
    partition: int
    offset: int


async def produce(
    servers: str, topic: str, values: Sequence[bytes | None], *, partitions: int
) -> list[Sent]:
    """Send ``values`` round-robin over ``partitions``, each acknowledged by the broker.

    A ``None`` value is a tombstone, which Kafka only accepts with a key.
    """
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [
            await producer.send(
                topic,
                value=value,
                key=b"tombstone" if value is None else None,
                partition=index % partitions,
            )
            for index, value in enumerate(values)
        ]
        metadata: list[RecordMetadata] = list(await asyncio.gather(*futures))
    finally:
        await producer.stop()
    return [
        Sent(value=value, partition=meta.partition, offset=meta.offset)
        for value, meta in zip(values, metadata, strict=True)
    ]


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    record: dict[str, Any]


class OutputReader:
    """Reads every partition of some topics from the beginning, without a consumer group."""

    def __init__(
        self,
        servers: str,
        topics: Iterable[str],
        *,
        decode: bool = True,
        isolation: str = "read_uncommitted",
    ) -> None:
        self._topics = tuple(topics)
        self._decode = decode
        self._servers = servers
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=50,
            isolation_level=isolation,
        )
        self.outputs: list[Output] = []

    async def __aenter__(self) -> Self:
        consumer = self._consumer
        await consumer.start()
        try:
            partitions = await _partitions(self._servers, self._topics)
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
        except BaseException:
            await consumer.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._consumer.stop()

    async def poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=100)
        for partition, messages in batches.items():
            for message in messages:
                self.outputs.append(
                    Output(
                        topic=partition.topic,
                        partition=partition.partition,
                        offset=message.offset,
                        key=message.key,
                        record=orjson.loads(message.value) if self._decode else {},
                    )
                )

    async def wait_until(
        self,
        condition: Callable[[list[Output]], bool],
        *,
        timeout_s: float,
        what: str,
        alive: Callable[[], None] | None = None,
    ) -> None:
        """Poll until ``condition(outputs)`` holds; ``alive`` raises if what we wait on died."""
        deadline = time.monotonic() + timeout_s
        while not condition(self.outputs):
            if alive is not None:
                alive()
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout_s:g} s waiting for {what}; "
                    f"{len(self.outputs)} outputs so far"
                )
            await self.poll()

    async def read_to_end(self, *, timeout_s: float = 20.0) -> dict[TopicPartition, int]:
        """Read everything on the topics now; return the position reached on each partition.

        tansu 0.6 answers ListOffsets(latest) with the base offset of the last record batch + 1,
        not the log end offset. Reading past that offset still reads the whole last batch (a
        fetch delivers batches whole), so the positions reached are the true end offsets.
        """
        consumer = self._consumer
        assigned = consumer.assignment()
        ends = await consumer.end_offsets(list(assigned))
        deadline = time.monotonic() + timeout_s
        while True:
            positions = {tp: await consumer.position(tp) for tp in assigned}
            if all(positions[tp] >= end for tp, end in ends.items()):
                return positions
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read to the end offsets {ends}: at {positions}")
            await self.poll()


async def outputs_of_process(
    servers: str, topics: Topics, count: int, process: subprocess.Popen[bytes]
) -> OutputReader:
    """Wait for ``count`` outputs of a ``modstream run`` process, which creates its topics
    when it starts: read them once they are there."""
    for _attempt in range(100):
        if process.poll() is not None:
            raise AssertionError(f"modstream run exited early with {process.returncode}")
        try:
            reader = OutputReader(servers, topics.outputs())
            await reader.__aenter__()
        except AssertionError:  # a topic does not exist yet
            await asyncio.sleep(0.1)
            continue
        await reader.wait_until(
            lambda outputs: len(outputs) >= count, timeout_s=60, what=f"{count} outputs"
        )
        return reader
    raise AssertionError("the topics never appeared")


async def _partitions(servers: str, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of ``topics``, from the broker's metadata (asked for by name)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        described = {t["topic"]: t for t in await admin.describe_topics(list(topics))}
    finally:
        await admin.close()
    found: list[TopicPartition] = []
    for topic in topics:
        info = described.get(topic)
        if info is None or info.get("error_code") != 0 or not info.get("partitions"):
            raise AssertionError(f"topic {topic} does not exist on the broker")
        numbers = sorted(partition["partition"] for partition in info["partitions"])
        found += [TopicPartition(topic, number) for number in numbers]
    return found


async def end_offsets(servers: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of ``topic``, found by reading it to the end."""
    async with OutputReader(servers, [topic], decode=False) as reader:
        positions = await reader.read_to_end()
    return {tp.partition: offset for tp, offset in positions.items()}


async def committed_offsets(
    servers: str, group_id: str, topic: str, partitions: Iterable[int]
) -> dict[int, int]:
    """The group's committed positions on ``topic``, as the broker reports them.

    The partitions are named explicitly: tansu drops the connection on an OffsetFetch for "all".
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(
            group_id, partitions=[TopicPartition(topic, number) for number in partitions]
        )
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def outputs_then_stop(
    servers: str,
    topics: Topics,
    count: int,
    task: asyncio.Task[None],
    stop: asyncio.Event,
    *,
    timeout_s: float,
) -> list[Output]:
    """Wait for ``count`` outputs while ``task`` runs, stop it, and read the topics to the end."""

    def alive() -> None:
        if task.done():
            raise AssertionError(f"the pipeline stopped early: {task!r}")

    async with OutputReader(servers, topics.outputs()) as reader:
        await reader.wait_until(
            lambda outputs: len(outputs) >= count,
            timeout_s=timeout_s,
            what=f"{count} outputs",
            alive=alive,
        )
        stop.set()
        async with asyncio.timeout(40):
            await task
        await reader.read_to_end()
        return list(reader.outputs)


async def scorer_ready(ready: asyncio.Event, scorer: asyncio.Task[None]) -> None:
    """Wait for a pipeline's scorer to be ready; re-raise why it stopped if it did first."""
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait({waiter, scorer}, timeout=90, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()
    if scorer.done():
        scorer.result()
    assert ready.is_set(), "the scorer did not become ready"
