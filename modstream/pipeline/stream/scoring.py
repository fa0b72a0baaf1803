"""The scoring stream: consume -> moderate -> publish (acks=all) -> commit.

Delivery is at least once by default. Each consumed record produces exactly one output record,
on the flagged, review, safe or errors topic; its offset is committed only after that output, and
the outputs of every earlier offset of the partition, are acknowledged by the broker
(:class:`~modstream.kafka.offsets.OffsetTracker`). After a crash, the records after the last
commit are replayed; their outputs may appear twice, recognisable by ``id``. With
``delivery=exactly-once`` (Apache Kafka) the outputs and the offsets are committed together in
one transaction per input partition every ``transaction_interval_s``
(:mod:`modstream.kafka.transactions`): a replay repeats nothing a ``read_committed`` reader sees.

The stream is a :class:`~modstream.kafka.sink.Step` of the one group sink, which owns the
consumer, the offsets, their commit and the producer: in-flight work is bounded by
``max_in_flight``; at the bound the loop pauses the assigned partitions (and keeps polling, so the
group keeps this member) until the moderator catches up, so memory stays flat under overload.

While the broker is away, the process's :class:`~modstream.kafka.outage.BrokerWatch` tells the
outage in a few lines; the stream reports its publish and commit retries and its in-flight
records to it, and logs a failed publish itself only outside a declared outage. The periodic
throughput line runs on a timer of its own, not on the consume loop's tick, which stops while a
poll waits for the broker.

A result the broker refuses for good (:class:`~modstream.errors.RecordRefused`: too large for its
topic) is answered by an error record in its place (:func:`~modstream.pipeline.stream.records.
refused_record`) and its offset moves on. A failure no record can get past (the broker denies a
topic: :class:`~modstream.errors.BrokerDenied`) stops the stream, which then raises it; its
record's offset is not committed, so the next start answers it.

Shutdown order (:meth:`ScoringStream.run` on ``stop``, or on such a failure): stop consuming ->
drain in-flight records (bounded by ``drain_timeout_s``) -> flush the producer -> commit -> close
the consumer and producer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from modstream.errors import ModstreamError, RecordRefused
from modstream.events import ImageEvent
from modstream.kafka.consume import LoopStatistics
from modstream.kafka.offsets import OffsetStatistics
from modstream.kafka.outage import broker_watch
from modstream.kafka.settings import KafkaSettings
from modstream.kafka.sink import GroupSink, Output, Partition
from modstream.pipeline.metrics import LatencyWindow, PipelineMetrics
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.stream.config import StreamConfig
from modstream.pipeline.stream.records import (
    Origin,
    error_record,
    parse_event,
    refused_record,
    result_record,
)

__all__ = ["ScoringStream", "StreamConfig", "StreamStatistics"]

log = logging.getLogger("modstream.stream")


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamStatistics:
    tasks: int
    peak_tasks: int
    revocations: int
    handed_over: int  # in-flight records of revoked partitions left to the next owner
    published: dict[str, int]
    offsets: OffsetStatistics
    consumer: LoopStatistics | None  # None before the consumer started

    @property
    def paused(self) -> bool:
        return self.consumer is not None and self.consumer.paused

    @property
    def pauses(self) -> int:
        return 0 if self.consumer is None else self.consumer.pauses


class ScoringStream:
    """The moderation step between ``images.incoming`` and the result topics."""

    def __init__(
        self,
        config: StreamConfig,
        kafka: KafkaSettings,
        moderator: Moderator,
        metrics: PipelineMetrics,
        *,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.moderator = moderator
        self._kafka = kafka
        self._metrics = metrics
        self._now = wall_clock
        self._window = LatencyWindow()
        self._lag_labels: set[tuple[str, str]] = set()  # (topic, partition) we report lag for
        self._tasks: dict[asyncio.Task[None], Partition] = {}
        self._sink: GroupSink | None = None
        self._peak_tasks = 0
        self._revocations = 0
        self._handed_over = 0
        self.published: dict[str, int] = dict.fromkeys(config.topics.outputs(), 0)

    # -- lifecycle ---------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Consume until ``stop`` is set, then shut down in order. Sets ``ready`` once consuming.

        Raises the failure that stopped the stream otherwise (after the same shutdown)."""
        async with contextlib.AsyncExitStack() as stack:
            # The outage lines: one when the broker goes, a summary every 10 s, one when back.
            watch = await stack.enter_async_context(broker_watch(self._kafka))
            stack.callback(watch.add_backlog(lambda: len(self._tasks)))
            sink = GroupSink(
                self._kafka, self.config.consumer(), self, linger_ms=2, retry=self.config.retry,
                watch=watch, on_lag=self._set_lag, logger=log, delivery=self.config.delivery,
            )  # fmt: skip
            self._sink = await stack.enter_async_context(sink)
            if not await sink.start(stop):
                return
            # On a timer of its own: the consume loop's tick stops while a poll waits for a
            # broker that is away, and the line must not stop with it.
            periodic = asyncio.create_task(self._log_periodically(), name="stream-log")
            stack.push_async_callback(_cancel, periodic)
            if ready is not None:
                ready.set()
            try:
                await sink.run(stop)
            finally:  # before the sink's exit (its last commit): the in-flight records finish
                await self._drain()

    async def _drain(self) -> None:
        if self._tasks:
            _done, pending = await asyncio.wait(
                list(self._tasks), timeout=self.config.drain_timeout_s
            )
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%d records were not finished at shutdown; they will be replayed",
                            len(pending))  # fmt: skip
        if self._sink is not None:
            await self._sink.publisher.flush()

    @property
    def idempotent(self) -> bool | None:
        """Whether the broker granted an idempotent producer (None before it started)."""
        return None if self._sink is None else self._sink.publisher.idempotent

    # -- the sink's step ---------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.config.max_in_flight

    def room(self) -> int:
        return max(self.config.max_in_flight - len(self._tasks), 0)

    def take(self, partition: Partition, offset: int, value: bytes | None) -> None:
        origin = Origin(topic=partition.topic, partition=partition.partition, offset=offset,
                        raw=value)  # fmt: skip
        task = asyncio.create_task(self._process(partition, origin))
        self._tasks[task] = partition
        self._peak_tasks = max(self._peak_tasks, len(self._tasks))
        task.add_done_callback(self._task_done)
        self._metrics.inflight.set(len(self._tasks))

    async def revoked(self, partitions: set[Partition]) -> None:
        """Before ``partitions`` move to another member: let their in-flight records finish (for
        up to ``revoke_timeout_s``), and cancel what is left, which the next owner replays.

        So a clean rebalance repeats nothing, and a slow record delays it by a bounded time.
        """
        self._revocations += 1
        leaving = [task for task, partition in self._tasks.items() if partition in partitions]
        if not leaving:
            return
        _done, late = await asyncio.wait(leaving, timeout=self.config.revoke_timeout_s)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
            self._handed_over += len(late)
            log.warning("%d records of revoked partitions did not finish within %.1f s; "
                        "their next owner replays them", len(late),
                        self.config.revoke_timeout_s)  # fmt: skip

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """A record task that failed leaves its offset unfinished: the stream stops (a denied
        topic, a bug) and raises the first such failure; the next start replays the record."""
        self._tasks.pop(task, None)
        self._metrics.inflight.set(len(self._tasks))
        if task.cancelled() or (failure := task.exception()) is None:
            return
        if not isinstance(failure, ModstreamError):
            log.error("a record task failed unexpectedly", exc_info=failure)
        if self._sink is not None:
            self._sink.fail(failure)

    def _set_lag(self, lags: dict[Partition, int]) -> None:
        """Set the lag of each assigned partition, and drop the partitions no longer ours (the
        scorer that took them over reports them now; a stale value would count twice)."""
        current = {(partition.topic, str(partition.partition)) for partition in lags}
        for partition, lag in lags.items():
            self._metrics.lag.labels(partition.topic, str(partition.partition)).set(lag)
        for labels in self._lag_labels - current:
            self._metrics.lag.remove(*labels)
        self._lag_labels = current

    async def _log_periodically(self) -> None:
        self._window.roll()  # the first window starts with consumption
        while True:
            await asyncio.sleep(self.config.log_interval_s)
            self._log_window()

    def _log_window(self) -> None:
        summary = self._window.roll()
        in_flight = len(self._tasks)
        if summary.all_failed:
            log.error("every image of the last %.1f s failed: %s; in flight %d; e.g. %s",
                      summary.seconds, summary.describe(), in_flight, summary.example)  # fmt: skip
        elif summary.count or summary.errors:
            log.info("%s; in flight %d", summary.describe(), in_flight)
        else:  # every window is told: a quiet log cannot mean both idle and stuck
            log.info("0 results, 0 errors in %.1f s; in flight %d", summary.seconds, in_flight)

    # -- one record --------------------------------------------------------------------------

    async def _process(self, partition: Partition, origin: Origin) -> None:
        topic, record = await self._outcome(origin)
        errors = self.config.topics.errors
        key = str(record.get("id", "")).encode() or None

        def instead(refused: RecordRefused) -> Output:
            """The error record that answers a result the broker refuses for good (refused
            again, the stream stops)."""
            self._metrics.errors.labels(refused.kind).inc()
            self._window.add_error(refused.kind, str(refused))
            log.warning("offset %d of %s: %s; an error record answers it", origin.offset,
                        origin.topic, refused)  # fmt: skip
            answer = refused_record(record, refused, topic=topic, published_at=self._now())
            self.published[topic] -= 1  # counted below as the result's; the error answers it
            self.published[errors] = self.published.get(errors, 0) + 1
            return Output(errors, orjson.dumps(answer), key=key)

        assert self._sink is not None
        self.published[topic] = self.published.get(topic, 0) + 1
        output = Output(topic, orjson.dumps(record), key=key, instead=instead)
        await self._sink.emit(partition, origin.offset, [output])

    async def _outcome(self, origin: Origin) -> tuple[str, dict[str, Any]]:
        topics = self.config.topics
        event: ImageEvent | None = None
        try:
            event = parse_event(origin.raw, now=self._now())
            moderated = await self.moderator.moderate_url(event.url)
        except ModstreamError as exc:
            if event is None:  # the moderator counts the errors of the images it was given
                self._metrics.errors.labels(exc.kind).inc()
            self._window.add_error(exc.kind, str(exc))
            record = error_record(exc, published_at=self._now(), event=event, origin=origin)
            return topics.errors, record
        except Exception as exc:  # a bug must still yield its one output record
            log.exception("unexpected failure on offset %d of %s", origin.offset, origin.topic)
            internal = ModstreamError(f"internal error: {type(exc).__name__}: {exc}")
            self._metrics.errors.labels(internal.kind).inc()
            self._window.add_error(internal.kind, str(internal))
            record = error_record(internal, published_at=self._now(), event=event, origin=origin)
            return topics.errors, record
        published_at = self._now()
        record = result_record(event, moderated, published_at=published_at)
        roundtrip = max(published_at - event.observed_at, 0.0)
        self._metrics.roundtrip.labels(moderated.decision.value).observe(roundtrip)
        self._window.add(roundtrip)
        return topics.for_decision(moderated.decision), record

    def statistics(self) -> StreamStatistics:
        sink = None if self._sink is None else self._sink.statistics()
        return StreamStatistics(
            tasks=len(self._tasks),
            peak_tasks=self._peak_tasks,
            revocations=self._revocations,
            handed_over=self._handed_over,
            published=dict(self.published),
            offsets=OffsetStatistics(0, 0, 0) if sink is None else sink.offsets,
            consumer=None if sink is None else sink.consumer,
        )


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.wait([task])
