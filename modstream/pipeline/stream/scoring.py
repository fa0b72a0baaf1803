"""The scoring stream: consume -> fetch -> score -> publish (acks=all) -> commit.

Delivery is at least once. Each consumed record produces exactly one output record, on the
flagged, review, safe or errors topic; its offset is committed only after that output, and the
outputs of every earlier offset of the partition, are acknowledged by the broker
(:class:`~modstream.kafka.offsets.OffsetTracker`). After a crash, the records after the last
commit are replayed; their outputs may appear twice, recognisable by ``id``.

In-flight work is bounded by ``max_in_flight``: when it is reached, the assigned partitions are
paused until the scorer catches up, so memory stays flat under overload.

Shutdown order (:meth:`ScoringStream.run` on ``stop``): stop consuming -> drain in-flight records
(bounded by ``drain_timeout_s``) -> flush the producer -> commit -> close the consumer and producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from modstream.errors import ModstreamError
from modstream.events import ImageEvent
from modstream.kafka.access import start_client
from modstream.kafka.offsets import OffsetTracker
from modstream.kafka.producers import start_producer
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.fetch.fetcher import Fetcher
from modstream.pipeline.metrics import LatencyWindow, PipelineMetrics
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.moderate.policy import PRESETS, Decision, Policy
from modstream.pipeline.score.scorer import Scorer
from modstream.pipeline.stream.records import Origin, error_record, parse_event, result_record

log = logging.getLogger("modstream.stream")
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True, slots=True)
class Topics:
    incoming: str = "images.incoming"
    flagged: str = "images.flagged"
    review: str = "images.review"
    safe: str = "images.safe"
    errors: str = "images.errors"

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        """``PREFIX.incoming``, ``PREFIX.flagged``, ...; the defaults use ``images``."""
        return cls(
            incoming=f"{prefix}.incoming",
            flagged=f"{prefix}.flagged",
            review=f"{prefix}.review",
            safe=f"{prefix}.safe",
            errors=f"{prefix}.errors",
        )

    def for_decision(self, decision: Decision) -> str:
        return {Decision.FLAGGED: self.flagged, Decision.REVIEW: self.review}.get(
            decision, self.safe
        )

    def outputs(self) -> tuple[str, ...]:
        return (self.flagged, self.review, self.safe, self.errors)


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamConfig:
    kafka: KafkaSettings
    topics: Topics = field(default_factory=Topics)
    group_id: str = "modstream-scorers"
    policy: Policy = field(default_factory=lambda: PRESETS["balanced"])
    cache: CacheConfig = field(default_factory=CacheConfig)
    max_in_flight: int = 64
    commit_interval_s: float = 0.5
    drain_timeout_s: float = 30.0
    # How long a revoked partition's in-flight records may take to finish before the partition
    # moves on; the rest are cancelled and replayed by its next owner.
    revoke_timeout_s: float = 5.0
    log_interval_s: float = 10.0
    retry_initial_s: float = 0.25
    retry_max_s: float = 5.0
    session_timeout_ms: int = 10_000
    fetch_max_wait_ms: int = 20


def should_pause(in_flight: int, max_in_flight: int, *, paused: bool) -> bool:
    """Pause consuming at the bound; once paused, resume only below three quarters of it.

    The gap keeps a saturated stream from pausing and resuming around every single record,
    which would make the consumer fetch one record at a time.
    """
    if paused:
        return in_flight > max_in_flight * 3 // 4
    return in_flight >= max_in_flight


class ScoringStream:
    def __init__(
        self,
        config: StreamConfig,
        scorer: Scorer,
        fetcher: Fetcher,
        metrics: PipelineMetrics,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self._scorer = scorer
        self._fetcher = fetcher
        self._metrics = metrics
        self._now = wall_clock
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self.moderator = Moderator(
            scorer, config.policy, fetcher=fetcher, cache=config.cache, metrics=metrics
        )
        self._window = LatencyWindow()
        self._lag_labels: set[tuple[str, str]] = set()  # (topic, partition) we report lag for
        self._tasks: dict[asyncio.Task[None], TopicPartition] = {}
        self._capacity = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self.idempotent: bool | None = None  # known once the producer has started
        self._producer: AIOKafkaProducer | None = None
        self._paused = False
        self._pauses = 0
        self._peak_tasks = 0
        self._revocations = 0
        self._handed_over = 0  # in-flight records of revoked partitions left to the next owner
        self.published: dict[str, int] = dict.fromkeys(config.topics.outputs(), 0)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set, then shut down in order. Sets ``ready`` once consuming."""
        try:
            started = await self._start_clients(stop)
            if not started:
                return
            if ready is not None:
                ready.set()
            await self._consume(stop)
        finally:
            await asyncio.shield(self._shutdown())

    async def _start_clients(self, stop: asyncio.Event) -> bool:
        kafka = self.config.kafka
        started = await self._retry(
            "start the producer",
            lambda: start_producer(kafka, role="scorer", linger_ms=2),
            stop,
        )
        if started is None:
            return False
        self._producer = started.producer
        self.idempotent = started.idempotent
        self._consumer = await self._retry(
            "start the consumer",
            lambda: self._start_consumer(kafka),
            stop,
        )
        return self._consumer is not None

    async def _start_consumer(self, kafka: KafkaSettings) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            **kafka.client_options("scorer"),
            group_id=self.config.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=max(self.config.session_timeout_ms // 5, 100),
            # The group waits this long for members to rejoin: room for a revoked partition's
            # in-flight records to finish (revoke_timeout_s) before we do.
            rebalance_timeout_ms=self.config.session_timeout_ms
            + int(self.config.revoke_timeout_s * 1000),
            fetch_max_wait_ms=self.config.fetch_max_wait_ms,
        )
        consumer.subscribe([self.config.topics.incoming], listener=_Rebalance(self))
        return await start_client(consumer)

    async def _retry(
        self, what: str, attempt: Callable[[], Awaitable[T]], stop: asyncio.Event
    ) -> T | None:
        """Retry ``attempt`` with capped exponential backoff until it succeeds or ``stop``."""
        delay = self.config.retry_initial_s
        while not stop.is_set():
            try:
                return await attempt()
            except (KafkaError, OSError) as exc:
                log.warning(
                    "cannot %s at %s (%s); retrying in %.1f s",
                    what, self.config.kafka.bootstrap_servers, exc, delay,
                )  # fmt: skip
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()
            delay = min(delay * 2, self.config.retry_max_s)
        return None

    async def _shutdown(self) -> None:
        if self._tasks:
            _done, pending = await asyncio.wait(
                list(self._tasks), timeout=self.config.drain_timeout_s
            )
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%d records were not finished at shutdown; they will be replayed",
                            len(pending))  # fmt: skip
        if self._producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._producer.flush()
        if self._consumer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._commit()
            with contextlib.suppress(KafkaError, OSError):
                await self._consumer.stop()
            self._consumer = None
        if self._producer is not None:
            with contextlib.suppress(KafkaError, OSError):
                await self._producer.stop()
            self._producer = None

    # -- consuming ---------------------------------------------------------------------------

    async def _consume(self, stop: asyncio.Event) -> None:
        assert self._consumer is not None
        consumer = self._consumer
        next_commit = next_log = time.monotonic()
        stop_waiter = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                in_flight = len(self._tasks)
                if should_pause(in_flight, self.config.max_in_flight, paused=self._paused):
                    self._pause(consumer)
                    self._capacity.clear()
                    capacity = asyncio.ensure_future(self._capacity.wait())
                    await asyncio.wait(
                        [stop_waiter, capacity],
                        timeout=self.config.commit_interval_s,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    capacity.cancel()
                else:
                    self._resume(consumer)
                    room = self.config.max_in_flight - in_flight
                    batches = await consumer.getmany(timeout_ms=50, max_records=room)
                    for partition, messages in batches.items():
                        for message in messages:
                            self._spawn(partition, message)
                now = time.monotonic()
                if now >= next_commit:
                    next_commit = now + self.config.commit_interval_s
                    with contextlib.suppress(KafkaError):
                        await self._commit()
                    await self._update_lag(consumer)
                if now >= next_log:
                    next_log = now + self.config.log_interval_s
                    self._log_window()
        finally:
            stop_waiter.cancel()

    def _pause(self, consumer: AIOKafkaConsumer) -> None:
        if not self._paused:
            consumer.pause(*consumer.assignment())
            self._paused = True
            self._pauses += 1

    def _resume(self, consumer: AIOKafkaConsumer) -> None:
        if self._paused:
            consumer.resume(*consumer.paused())
            self._paused = False

    def _spawn(self, partition: TopicPartition, message: Any) -> None:
        self._tracker.start(partition, message.offset)
        origin = Origin(
            topic=message.topic, partition=message.partition, offset=message.offset,
            raw=message.value,
        )  # fmt: skip
        task = asyncio.create_task(self._process(partition, origin))
        self._tasks[task] = partition
        self._peak_tasks = max(self._peak_tasks, len(self._tasks))
        task.add_done_callback(self._task_done)
        self._metrics.inflight.set(self._tracker.in_flight)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._capacity.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("a record task failed unexpectedly", exc_info=task.exception())

    async def _hand_over(self, revoked: set[TopicPartition]) -> None:
        """Before ``revoked`` move to another member: let their in-flight records finish (for up
        to ``revoke_timeout_s``), commit, and cancel what is left, which the next owner replays.

        So a clean rebalance repeats nothing, and a slow record delays it by a bounded time.
        """
        self._revocations += 1
        leaving = [task for task, partition in self._tasks.items() if partition in revoked]
        if leaving:
            _done, late = await asyncio.wait(leaving, timeout=self.config.revoke_timeout_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                self._handed_over += len(late)
                log.warning("%d records of revoked partitions did not finish within %.1f s; "
                            "their next owner replays them", len(late),
                            self.config.revoke_timeout_s)  # fmt: skip
        with contextlib.suppress(KafkaError):
            await self._commit()
        self._tracker.forget(revoked)

    async def _commit(self) -> None:
        if self._consumer is None:
            return
        positions = self._tracker.committable()
        if positions:
            await self._consumer.commit(positions)
            self._tracker.mark_committed(positions)
        self._metrics.inflight.set(self._tracker.in_flight)

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Set the lag of each assigned partition, and drop the partitions no longer ours (the
        scorer that took them over reports them now; a stale value would count twice)."""
        assigned = consumer.assignment()
        for partition in assigned:
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            with contextlib.suppress(KafkaError, AssertionError):
                position = await consumer.position(partition)
                labels = (partition.topic, str(partition.partition))
                self._metrics.lag.labels(*labels).set(max(highwater - position, 0))
                self._lag_labels.add(labels)
        current = {(partition.topic, str(partition.partition)) for partition in assigned}
        for labels in self._lag_labels - current:
            self._metrics.lag.remove(*labels)
        self._lag_labels &= current

    def _log_window(self) -> None:
        summary = self._window.roll()
        if summary.count:
            log.info("%s; in flight %d", summary.describe(), self._tracker.in_flight)

    # -- one record --------------------------------------------------------------------------

    async def _process(self, partition: TopicPartition, origin: Origin) -> None:
        topic, record = await self._outcome(origin)
        await self._publish(topic, record)
        self._tracker.finish(partition, origin.offset)

    async def _outcome(self, origin: Origin) -> tuple[str, dict[str, Any]]:
        topics = self.config.topics
        event: ImageEvent | None = None
        try:
            event = parse_event(origin.raw, now=self._now())
            moderated = await self.moderator.moderate_url(event.url)
        except ModstreamError as exc:
            if event is None:  # the moderator counts the errors of the images it was given
                self._metrics.errors.labels(exc.kind).inc()
            record = error_record(exc, published_at=self._now(), event=event, origin=origin)
            return topics.errors, record
        except Exception as exc:  # a bug must still yield its one output record
            log.exception("unexpected failure on offset %d of %s", origin.offset, origin.topic)
            internal = ModstreamError(f"internal error: {type(exc).__name__}: {exc}")
            self._metrics.errors.labels(internal.kind).inc()
            record = error_record(internal, published_at=self._now(), event=event, origin=origin)
            return topics.errors, record
        published_at = self._now()
        record = result_record(event, moderated, published_at=published_at)
        roundtrip = max(published_at - event.observed_at, 0.0)
        self._metrics.roundtrip.labels(moderated.decision.value).observe(roundtrip)
        self._window.add(roundtrip)
        return topics.for_decision(moderated.decision), record

    async def _publish(self, topic: str, record: dict[str, Any]) -> None:
        """Publish with acks=all, retrying while the broker is away; never drop the record."""
        assert self._producer is not None
        value = orjson.dumps(record)
        key = str(record.get("id", "")).encode() or None
        delay = self.config.retry_initial_s
        while True:
            try:
                await self._producer.send_and_wait(topic, value=value, key=key)
            except KafkaError as exc:
                log.warning("publishing to %s failed (%s); retrying in %.1f s", topic, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.config.retry_max_s)
                continue
            self.published[topic] = self.published.get(topic, 0) + 1
            return

    def statistics(self) -> dict[str, Any]:
        return {
            "tasks": len(self._tasks),
            "peak_tasks": self._peak_tasks,
            "revocations": self._revocations,
            "handed_over": self._handed_over,
            "paused": self._paused,
            "pauses": self._pauses,
            "published": dict(self.published),
            "offsets": self._tracker.statistics(),
            **self.moderator.statistics(),
            "scorer": self._scorer.statistics(),
        }


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Finish and commit a partition's in-flight work before it moves to another member."""

    def __init__(self, stream: ScoringStream) -> None:
        self._stream = stream

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._stream._hand_over(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("assigned partitions: %s", sorted(f"{tp.topic}:{tp.partition}" for tp in assigned))
