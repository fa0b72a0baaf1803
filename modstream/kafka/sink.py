"""The consume -> step -> publish -> commit cycle, once, for every group member modstream runs.

    async with GroupSink(kafka, consumer settings, step, ...) as sink:
        await sink.start(stop)   the producer (a Publisher), then the consumer: retried while
                                 the broker is away; False if ``stop`` came first
        await sink.run(stop)     poll (the one ConsumeLoop) until ``stop``, or until a step
                                 calls ``sink.fail(error)``: then that error is raised
    the step:   take(partition, offset, value) ... sink.publisher.send(...) ... sink.finish(...)
    the step:   or ``await sink.emit(partition, offset, outputs)``: the record's outputs, then
                its offset finished, in either delivery
    the sink:   every commit_interval_s, commit each partition up to its first unfinished offset
    a rebalance: the step's ``revoked`` (finish what it can), a commit, then the partitions'
                offsets are forgotten
    the exit:   a last commit, the consumer stops, the producer flushes and stops

Exactly once (``delivery=Delivery.EXACTLY_ONCE``, Apache Kafka): the outputs a step emits go into
its input partition's transaction (:mod:`modstream.kafka.transactions`), and the commit every
``commit_interval_s`` is that transaction's, with the partition's offset inside it. A partition
assigned is held (nothing fetched) until its transactional producer has fenced the previous owner
and the committed offset is read again, then consumed from there.

The scoring stream, the review console and the labeler are steps; each keeps only its own work.
An offset is finished by the step once that record's output is acknowledged, so a commit never
passes a record without its output (at least once). A step that cannot go on (a topic the
broker denies) calls :meth:`GroupSink.fail`: the loop stops, nothing after the failed record is
committed, and :meth:`GroupSink.run` raises the error for the process to report in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, Self, TypeAlias, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from modstream.backoff import Backoff, BackoffPolicy, Stopped, is_retriable, retry
from modstream.errors import BrokerUnavailable, ProducerFenced, RecordRefused
from modstream.kafka.consume import ConsumeLoop, ConsumerSettings, LoopStatistics
from modstream.kafka.offsets import OffsetStatistics, OffsetTracker
from modstream.kafka.outage import BrokerWatch
from modstream.kafka.publish import Publisher
from modstream.kafka.settings import Delivery, KafkaSettings
from modstream.kafka.transactions import Output, Transactions, TransactionStatistics

__all__ = ["GroupSink", "Output", "Partition", "SinkStatistics", "Step"]

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
    transactions: TransactionStatistics | None  # exactly once only


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
        delivery: Delivery = Delivery.AT_LEAST_ONCE,
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
        self.delivery = delivery
        self._transactions: Transactions | None = None
        if delivery is Delivery.EXACTLY_ONCE:
            self._transactions = Transactions(
                kafka, group_id=consumer.group_id, role=consumer.role, linger_ms=linger_ms,
                timeout_s=consumer.timings.transaction_timeout_s,
            )  # fmt: skip

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
            if self._transactions is not None:  # after the consumer's exit: a last commit
                self._stack.push_async_callback(self._close_transactions)
            self._loop = await self._retry("start the consumer", self._enter_loop, stop)
        except Stopped:
            return False
        return True

    async def _enter_loop(self) -> ConsumeLoop:
        loop = ConsumeLoop(self._kafka, self.settings, self)
        self._loop = loop  # the group may assign partitions before the start returns
        try:
            return await self._stack.enter_async_context(loop)
        except (KafkaError, OSError) as exc:
            self._loop = None
            where = self._kafka.bootstrap_servers
            raise BrokerUnavailable(f"cannot start a consumer at {where}: {exc}") from exc
        except BaseException:
            self._loop = None
            raise

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

    async def emit(self, partition: Partition, offset: int, outputs: list[Output]) -> None:
        """The outputs of the record at ``offset``, then its offset finished. At least once:
        each is sent and acknowledged (a refusal for good answered by its ``instead``); exactly
        once: they join the partition's transaction once every earlier offset's have."""
        if self._transactions is None:
            for output in outputs:
                await self._publish(output)
            self.finish(partition, offset)
            return
        self._transactions.add(partition, offset, outputs)
        self.finish(partition, offset)
        position = self._tracker.position(partition)
        if position is not None:
            self._transactions.release(partition, position)

    async def _publish(self, output: Output) -> None:
        try:
            await self.publisher.send(output.topic, output.value, key=output.key)
        except RecordRefused as refused:
            if output.instead is None:
                raise
            answer = output.instead(refused)
            await self.publisher.send(answer.topic, answer.value, key=answer.key)

    @property
    def in_flight(self) -> int:
        return self._tracker.in_flight

    def statistics(self) -> SinkStatistics:
        return SinkStatistics(
            offsets=self._tracker.statistics(),
            consumer=None if self._loop is None else self._loop.statistics(),
            renewals=self.publisher.renewals,
            transactions=None if self._transactions is None else self._transactions.statistics(),
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
        if self._transactions is not None:
            self._tracker.mark_committed(await self._transactions.commit())
            if self._on_lag is not None:
                self._on_lag(await _lags(consumer))
            return
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
        if self._transactions is not None:
            try:
                self._tracker.mark_committed(await self._transactions.close(partitions))
            except ProducerFenced as fenced:
                self.fail(fenced)
        elif self._loop is not None:
            with contextlib.suppress(KafkaError):
                await self._commit(self._loop.consumer)
        self._tracker.forget(partitions)

    async def assigned(self, partitions: set[Partition]) -> None:
        self._log.info("assigned partitions: %s",
                       sorted(f"{tp.topic}:{tp.partition}" for tp in partitions))  # fmt: skip
        if self._transactions is None or not partitions:
            return
        try:
            loop = self.loop
            loop.hold(partitions)  # before any await: nothing of them is fetched yet
            await self._prepare(partitions)
        except Stopped:
            return
        except Exception as exc:  # noqa: BLE001 - aiokafka would log and drop it: the run stops
            self.fail(exc)
            return
        loop.release(partitions)

    async def _prepare(self, partitions: set[Partition]) -> None:
        """Exactly once: each partition's transactional producer started (fencing the previous
        owner, whose open transaction ends first), then its committed offset read anew and
        consumed from."""
        transactions, consumer = self._transactions, self.loop.consumer
        assert transactions is not None
        for partition in sorted(partitions):
            named = f"{partition.topic}:{partition.partition}"
            await self._retry(f"start the transactions of {named}",
                              functools.partial(transactions.open, partition),
                              self._halt)  # fmt: skip
            committed = await self._retry(f"read the committed offset of {named}",
                                          functools.partial(_committed, consumer, partition),
                                          self._halt)  # fmt: skip
            if committed is not None:
                consumer.seek(partition, committed)

    async def _close_transactions(self) -> None:
        assert self._transactions is not None
        try:
            await self._transactions.close_all()
        except ProducerFenced as fenced:
            if self._failure is None:
                self._failure = fenced

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


async def _committed(consumer: AIOKafkaConsumer, partition: Partition) -> int | None:
    try:
        offset = await consumer.committed(partition)
    except (KafkaError, OSError) as exc:
        raise BrokerUnavailable(f"cannot read the committed offset of {partition}: {exc}") from exc
    return None if offset is None else int(offset)


async def _relay(stop: asyncio.Event, halt: asyncio.Event) -> None:
    await stop.wait()
    halt.set()
