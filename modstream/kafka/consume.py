"""The one consume loop: the scoring stream's and the review console's.

    subscribe -> poll (getmany, at most ``room`` records) -> the sink takes them
              -> every ``commit_interval_s``: the sink's tick (commit, lag, logs)
              -> a full sink: pause every assigned partition, and keep polling

A full sink pauses its partitions with :meth:`AIOKafkaConsumer.pause` and the loop goes on calling
``getmany``, which returns nothing for paused partitions but counts as a poll: aiokafka leaves
the group once ``max_poll_interval_s`` passes without one, and on the rejoin the sink would lose
its partitions' state (a review console its leases). So however long a sink stays full, its
consumer stays a member. The loop resumes only once a quarter of the sink's capacity is free
(:func:`should_pause`), so a saturated sink does not fetch one record at a time.

Rebalances reach the sink through :class:`Sink.revoked` (finish, commit, forget) and
:class:`Sink.assigned`, called by aiokafka inside ``getmany``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from modstream.kafka.access import start_client, stop_client
from modstream.kafka.settings import GroupTimings, KafkaSettings

__all__ = ["ConsumeLoop", "ConsumerSettings", "LoopStatistics", "Sink", "should_pause"]

log = logging.getLogger("modstream.consume")


@dataclass(frozen=True, kw_only=True, slots=True)
class ConsumerSettings:
    """A consumer group member's settings; durations in seconds (Kafka's milliseconds inside)."""

    topics: tuple[str, ...]
    group_id: str
    role: str  # names the client (client.id) in the broker's logs
    timings: GroupTimings = field(default_factory=GroupTimings)

    def __post_init__(self) -> None:
        if not self.topics:
            raise ValueError("a consumer needs at least one topic")

    def consumer_options(self) -> dict[str, Any]:
        # read_committed: a transaction's records only once it commits, never an aborted one's
        # (exactly once upstream); a producer without transactions is read as before.
        return {
            "group_id": self.group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            **self.timings.consumer_options(),
        }


class Sink(Protocol):
    """What the loop feeds: the scoring stream, the review console."""

    @property
    def capacity(self) -> int:
        """The most records it holds at once (in flight, or pending review)."""

    def room(self) -> int:
        """How many more records it takes now; 0 pauses consumption."""

    def take(self, partition: TopicPartition, offset: int, value: bytes | None) -> None:
        """One consumed record (synchronous: start its work, do not await it)."""

    async def tick(self, consumer: AIOKafkaConsumer) -> None:
        """Every ``commit_interval_s``: commit what is finished, export gauges, log."""

    async def revoked(self, partitions: set[TopicPartition]) -> None:
        """Before ``partitions`` move to another member: finish or hand over, commit, forget."""

    async def assigned(self, partitions: set[TopicPartition]) -> None:
        """``partitions`` are this member's now."""


def should_pause(in_flight: int, max_in_flight: int, *, paused: bool) -> bool:
    """Pause consuming at the bound; once paused, resume only below three quarters of it.

    The gap keeps a saturated stream from pausing and resuming around every single record,
    which would make the consumer fetch one record at a time.
    """
    if paused:
        return in_flight > max_in_flight * 3 // 4
    return in_flight >= max_in_flight


@dataclass(frozen=True, slots=True)
class LoopStatistics:
    polls: int
    consumed: int
    paused: bool
    pauses: int
    rebalances: int  # (re)joins of the group: aiokafka revokes before each, the first included


class ConsumeLoop:
    """Owns one group member's consumer: set-up, polling, pausing, the commit tick, stop.

    ``async with ConsumeLoop(kafka, settings, sink) as loop: await loop.run(stop)``; the consumer
    starts in ``__aenter__`` (a failure there is the caller's to retry) and stops in
    ``__aexit__``, after one last tick.
    """

    def __init__(self, kafka: KafkaSettings, settings: ConsumerSettings, sink: Sink) -> None:
        self.settings = settings
        self._kafka = kafka
        self._sink = sink
        self._consumer: AIOKafkaConsumer | None = None
        self._paused = False
        self._pauses = 0
        self._polls = 0
        self._consumed = 0
        self._rebalances = 0
        self._held: set[TopicPartition] = set()  # paused by the sink until it is ready for them
        self.joined = asyncio.Event()  # set once partitions were assigned (or none remained)

    @property
    def consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("the consume loop is not started")
        return self._consumer

    async def __aenter__(self) -> ConsumeLoop:
        consumer = AIOKafkaConsumer(
            **self._kafka.client_options(self.settings.role), **self.settings.consumer_options()
        )
        consumer.subscribe(list(self.settings.topics), listener=_Listener(self))
        self._consumer = consumer  # the group may assign partitions before the start returns
        try:
            await start_client(consumer)
        except BaseException:
            self._consumer = None
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        # The last commit, shielded from the caller's cancellation but bounded: while the broker
        # is away aiokafka's commit waits for the coordinator for ever.
        tick = asyncio.ensure_future(self._sink.tick(consumer))
        try:
            await asyncio.wait({tick}, timeout=self.settings.timings.final_commit_s)
        finally:
            try:
                await _settle(tick)
            finally:
                await stop_client(consumer)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set, pausing while the sink is full and still polling."""
        consumer = self.consumer
        interval = self.settings.timings.commit_interval_s
        poll_ms = _ms(self.settings.timings.poll_s)
        next_tick = time.monotonic() + interval
        while not stop.is_set():
            room = self._sink.room()
            self._set_paused(consumer, room)
            batches = await consumer.getmany(timeout_ms=poll_ms, max_records=max(room, 1))
            self._polls += 1
            for partition, messages in batches.items():
                for message in messages:
                    self._consumed += 1
                    self._sink.take(partition, message.offset, message.value)
            if consumer.assignment():
                self.joined.set()
            now = time.monotonic()
            if now >= next_tick:
                next_tick = now + interval
                await self._tick(consumer, stop)

    async def _tick(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        """The sink's tick (a commit, the lag), given up when ``stop`` is set meanwhile: while
        the broker is away a commit waits for it, and a stop must not."""
        tick = asyncio.ensure_future(self._sink.tick(consumer))
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({tick, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await _settle(tick)

    def _set_paused(self, consumer: AIOKafkaConsumer, room: int) -> None:
        """Pause with no room left; resume once a quarter of the capacity is free again."""
        capacity = self._sink.capacity
        pause = should_pause(capacity - room, capacity, paused=self._paused)
        if pause and not self._paused:
            self._pauses += 1
        if pause:  # again each time: partitions assigned while paused start paused too
            consumer.pause(*consumer.assignment())
        elif self._paused:
            consumer.resume(*(set(consumer.paused()) - self._held))
        self._paused = pause

    def hold(self, partitions: set[TopicPartition]) -> None:
        """Fetch nothing of ``partitions`` until :meth:`release` (the sink prepares them)."""
        self._held |= partitions
        self.consumer.pause(*partitions)

    def release(self, partitions: set[TopicPartition]) -> None:
        self._held -= partitions
        if not self._paused and self._consumer is not None:
            self._consumer.resume(*(partitions & self._consumer.assignment()))

    def statistics(self) -> LoopStatistics:
        return LoopStatistics(
            polls=self._polls,
            consumed=self._consumed,
            paused=self._paused,
            pauses=self._pauses,
            rebalances=self._rebalances,
        )

    async def _revoked(self, partitions: Sequence[TopicPartition]) -> None:
        self._rebalances += 1
        await self._sink.revoked(set(partitions))

    async def _assigned(self, partitions: Sequence[TopicPartition]) -> None:
        if self._paused and self._consumer is not None:
            self._consumer.pause(*partitions)
        await self._sink.assigned(set(partitions))


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, loop: ConsumeLoop) -> None:
        self._loop = loop

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self._loop._revoked(revoked)

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self._loop._assigned(assigned)


async def _settle(tick: asyncio.Future[None]) -> None:
    """Cancel ``tick`` unless it is done, wait for it, and raise what it raised unless that is
    the broker's (the next tick commits the same positions) or its cancellation."""
    if not tick.done():
        tick.cancel()
    (outcome,) = await asyncio.gather(tick, return_exceptions=True)
    if isinstance(outcome, BaseException) and not isinstance(
        outcome, KafkaError | OSError | asyncio.CancelledError
    ):
        raise outcome


def _ms(seconds: float) -> int:
    return max(round(seconds * 1000), 1)
