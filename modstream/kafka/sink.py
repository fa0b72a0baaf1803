"""The consume -> step -> publish -> commit cycle, once, for every group member modstream runs.

    async with GroupSink(kafka, consumer settings, step, ...) as sink:
        await sink.start(stop)   the producer (a Publisher), then the consumer: retried while
                                 the broker is away; False if ``stop`` came first
        await sink.run(stop)     poll (the one ConsumeLoop) until ``stop``, or until a step
                                 calls ``sink.fail(error)``: then that error is raised
    the step:   take(partition, offset, value) ... sink.publisher.send(...) ... sink.finish(...)
    the sink:   every commit_interval_s, commit each partition up to its first unfinished offset
    a rebalance: the step's ``revoked`` (finish what it can), a commit, then the partitions'
                offsets are forgotten
    the exit:   a last commit, the consumer stops, the producer flushes and stops

The scoring stream, the review console and the labeler are steps; each keeps only its own work.
An offset is finished by the step once that record's output is acknowledged, so a commit never
passes a record without its output (at least once). A step that cannot go on (a topic the
broker denies) calls :meth:`GroupSink.fail`: the loop stops, nothing after the failed record is
committed, and :meth:`GroupSink.run` raises the error for the process to report in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, Self, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from modstream.backoff import Backoff, BackoffPolicy, Stopped, is_retriable, retry
from modstream.errors import BrokerUnavailable
from modstream.kafka.consume import ConsumeLoop, ConsumerSettings, LoopStatistics
from modstream.kafka.offsets import OffsetStatistics, OffsetTracker
from modstream.kafka.outage import BrokerWatch
from modstream.kafka.publish import Publisher
from modstream.kafka.settings import KafkaSettings

__all__ = ["GroupSink", "Partition", "SinkStatistics", "Step"]

log = logging.getLogger("modstream.kafka")
T = TypeVar("T")

# A topic's partition, as the sink hands it to its step: (topic, partition), hashable.
Partition: TypeAlias = TopicPartition


class Step(Protocol):
    """A stage's own work between consuming a record and finishing its offset."""

    @property
    def capacity(self) -> int:
        """How many records the step holds at most (the loop pauses at the bound)."""
        ...

    def room(self) -> int: ...

    def take(self, partition: Partition, offset: int, value: bytes | None) -> None:
        """Start on one record; the sink has started its offset, the step finishes it."""
        ...

    async def revoked(self, partitions: set[Partition]) -> None:
        """The partitions leave: finish what can be finished before the sink commits."""
        ...


@dataclass(frozen=True, slots=True)
class SinkStatistics:
    offsets: OffsetStatistics
    consumer: LoopStatistics | None  # None before the consumer started
    renewals: int  # producers replaced after the broker refused a record


class GroupSink:
    """One consumer group member with its producer; see the module docstring."""

    def __init__(
        self,
        kafka: KafkaSettings,
        consumer: ConsumerSettings,
        step: Step,
        *,
        linger_ms: int = 0,
        retry: BackoffPolicy | None = None,
        watch: BrokerWatch | None = None,
        on_lag: Callable[[dict[Partition, int]], None] | None = None,
        logger: logging.Logger = log,
    ) -> None:
        self.settings = consumer
        self._log = logger  # the stage's own: its operators read its lines under its name
        self._kafka = kafka
        self._step = step
        self._policy = retry or BackoffPolicy(initial_s=0.25, max_s=5.0, jitter=0.0)
        self._watch = watch
        self._on_lag = on_lag
        self._tracker: OffsetTracker[Partition] = OffsetTracker()
        self.publisher = Publisher(
            kafka, role=consumer.role, linger_ms=linger_ms, retry=self._policy,
            on_retry=self._publish_failed,
        )  # fmt: skip
        self._loop: ConsumeLoop | None = None
        self._stack = contextlib.AsyncExitStack()
        self._halt = asyncio.Event()  # set by ``stop``, or by a failure
        self._failure: BaseException | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, stop: asyncio.Event | None = None) -> bool:
        """Start the producer, then the consumer, each retried while the broker is away."""
        try:
            await self._retry("start the producer", self.publisher.start, stop)
            self._stack.push_async_callback(self.publisher.stop)
            self._loop = await self._retry("start the consumer", self._enter_loop, stop)
        except Stopped:
            return False
        return True

    async def _enter_loop(self) -> ConsumeLoop:
        loop = ConsumeLoop(self._kafka, self.settings, self)
        try:
            return await self._stack.enter_async_context(loop)
        except (KafkaError, OSError) as exc:
            where = self._kafka.bootstrap_servers
            raise BrokerUnavailable(f"cannot start a consumer at {where}: {exc}") from exc

    async def _retry(
        self, what: str, attempt: Callable[[], Awaitable[T]], stop: asyncio.Event | None
    ) -> T:
        def failed(exc: BaseException, delay: float) -> None:
            if self._watch is not None:
                self._watch.retried("start")
            self._log.warning("cannot %s at %s (%s); retrying in %.1f s",
                        what, self._kafka.bootstrap_servers, exc, delay)  # fmt: skip

        return await retry(attempt, retriable=is_retriable, backoff=Backoff(self._policy),
                           stop=stop, on_retry=failed)  # fmt: skip

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; raise the failure a step reported, if one did."""
        relay = asyncio.create_task(_relay(stop, self._halt), name="sink-stop")
        try:
            await self.loop.run(self._halt)
        finally:
            relay.cancel()
            await asyncio.gather(relay, return_exceptions=True)
        if self._failure is not None:
            raise self._failure

    def fail(self, error: BaseException) -> None:
        """Stop consuming: a step cannot go on. The first failure is the one raised."""
        if self._failure is None:
            self._failure = error
        self._halt.set()

    @property
    def halted(self) -> bool:
        return self._halt.is_set()

    @property
    def loop(self) -> ConsumeLoop:
        if self._loop is None:
            raise RuntimeError("the sink is not started")
        return self._loop

    @property
    def joined(self) -> asyncio.Event:
        """Set once the consumer has been assigned its partitions."""
        return self.loop.joined

    # -- offsets -----------------------------------------------------------------------------

    def finish(self, partition: Partition, offset: int) -> None:
        """The record at ``offset`` has its output acknowledged: it may be committed."""
        self._tracker.finish(partition, offset)

    @property
    def in_flight(self) -> int:
        return self._tracker.in_flight

    def statistics(self) -> SinkStatistics:
        return SinkStatistics(
            offsets=self._tracker.statistics(),
            consumer=None if self._loop is None else self._loop.statistics(),
            renewals=self.publisher.renewals,
        )

    # -- the consume loop's sink -------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._step.capacity

    def room(self) -> int:
        return self._step.room()

    def take(self, partition: Partition, offset: int, value: bytes | None) -> None:
        self._tracker.start(partition, offset)
        self._step.take(partition, offset, value)

    async def tick(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await self._commit(consumer)
        except KafkaError:
            if self._watch is not None:
                self._watch.retried("commit")  # the next tick commits the same positions
            raise
        if self._on_lag is not None:
            self._on_lag(await _lags(consumer))

    async def revoked(self, partitions: set[Partition]) -> None:
        if not partitions:  # aiokafka asks before every join, the first included
            return
        await self._step.revoked(partitions)
        if self._loop is not None:
            with contextlib.suppress(KafkaError):
                await self._commit(self._loop.consumer)
        self._tracker.forget(partitions)

    async def assigned(self, partitions: set[Partition]) -> None:
        self._log.info("assigned partitions: %s",
                       sorted(f"{tp.topic}:{tp.partition}" for tp in partitions))  # fmt: skip

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        positions = self._tracker.committable()
        if positions:
            await consumer.commit(positions)
            self._tracker.mark_committed(positions)

    def _publish_failed(self, topic: str, error: BaseException, delay: float) -> None:
        if self._watch is not None:
            self._watch.retried("publish")
            if self._watch.unreachable:  # its summary says it
                return
        self._log.warning("publishing to %s failed (%s); retrying in %.1f s", topic, error, delay)


async def _lags(consumer: AIOKafkaConsumer) -> dict[Partition, int]:
    """Each assigned partition's lag: the broker's high watermark less our position."""
    lags: dict[Partition, int] = {}
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        if highwater is None:
            continue
        with contextlib.suppress(KafkaError, AssertionError):
            lags[partition] = max(highwater - await consumer.position(partition), 0)
    return lags


async def _relay(stop: asyncio.Event, halt: asyncio.Event) -> None:
    await stop.wait()
    halt.set()
