"""Move one source's events into ``images.incoming``: bounded, acknowledged, never dropped.

Up to ``max_outstanding`` sends are in flight at once (acks=all, keyed by event id), through the
process's one :class:`~modstream.kafka.publish.Publisher`. A send that fails is sent again with
backoff for as long as the broker is away: the connector never exits for it. An event the broker
refuses for good (over the topic's size limit) is logged with its kind and counted as
``refused``, and its position moves on; a topic the ACLs deny fails the run. The source's
position is saved (:mod:`.checkpoints`) only once every event up to it is acknowledged
(:class:`~.positions.PositionTracker`), and an emission's ``receipt`` is resolved at that moment.

Shutdown order (:meth:`SourcePublisher.run` on ``stop``, on the source's end, or on a failure):
stop reading the source -> wait for outstanding sends (bounded by ``drain_timeout_s``) -> save the
durable position. The producer itself belongs to the caller, which stops it after every
publisher has drained.

A checkpoint records the end offsets of the topic's partitions when it is saved (read with
``ends``), and a start resumes from it only if the topic still reaches them
(:func:`~.resume.decide_start`): a checkpoint made against another cluster is not resumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass, field

from modstream.backoff import Backoff, BackoffPolicy, is_retriable, retry
from modstream.connectors.base import Source
from modstream.connectors.checkpoints import CheckpointStore
from modstream.connectors.positions import Completed, PositionTracker
from modstream.connectors.resume import Resume, decide_start, restarts
from modstream.errors import BrokerUnavailable, RecordRefused
from modstream.events import ImageEvent
from modstream.kafka.ends import TopicEnds
from modstream.kafka.outage import BrokerWatch
from modstream.kafka.publish import Publisher

__all__ = ["PublisherConfig", "PublisherStatistics", "SourcePublisher"]

log = logging.getLogger("modstream.connector")


@dataclass(frozen=True, kw_only=True, slots=True)
class PublisherConfig:
    topic: str
    max_outstanding: int = 1000
    checkpoint_interval_s: float = 1.0
    drain_timeout_s: float = 30.0
    backoff: BackoffPolicy = field(default_factory=lambda: BackoffPolicy(initial_s=0.25, max_s=5.0))


@dataclass(frozen=True, slots=True)
class PublisherStatistics:
    published: int  # events acknowledged by the broker
    failures: int  # failed send attempts (each retried)
    refused: int  # events the broker refused for good (too large): logged, not published
    outstanding: int  # events sent, not yet acknowledged
    checkpoint: str | None  # the last position saved
    healthy: bool  # False from a failed send until the next acknowledged one


class SourcePublisher:
    def __init__(
        self,
        source: Source,
        publisher: Publisher,
        checkpoints: CheckpointStore,
        config: PublisherConfig,
        ends: TopicEnds | None = None,
        *,
        watch: BrokerWatch | None = None,
    ) -> None:
        self.source = source
        self._ends = ends
        self._ends_seen: dict[int, int] | None = None
        self.config = config
        self._publisher = publisher
        self._checkpoints = checkpoints
        self._tracker = PositionTracker()
        self._receipts: dict[int, asyncio.Future[None]] = {}
        self._slots = asyncio.Semaphore(config.max_outstanding)
        self._deliveries: set[asyncio.Task[None]] = set()
        self._published = 0
        self._failures = 0
        self._refused = 0
        self._healthy = True
        self._saved: str | None = None
        # While the watch has declared an outage, it tells the retries (counted) and the
        # outstanding sends (waiting) in its summary, and the sends stop logging their own.
        self._watch = watch

    def statistics(self) -> PublisherStatistics:
        return PublisherStatistics(
            published=self._published,
            failures=self._failures,
            refused=self._refused,
            outstanding=len(self._deliveries),
            checkpoint=self._saved,
            healthy=self._healthy,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until the source ends or ``stop`` is set; then drain and save the position."""
        key = self.source.checkpoint_key
        resume_from = await self._start_position()
        stop_counting = None
        if self._watch is not None:  # its outage summary counts the sends not yet acknowledged
            stop_counting = self._watch.add_backlog(lambda: len(self._deliveries))
        reader = asyncio.create_task(self._read(resume_from), name=f"read-{key}")
        saver = asyncio.create_task(self._save_periodically(), name=f"checkpoint-{key}")
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done():
                reader.result()  # a source that failed fails the run
        finally:
            for task in (reader, saver, stopped):
                task.cancel()
            await asyncio.gather(reader, saver, stopped, return_exceptions=True)
            await asyncio.shield(self._drain())
            if stop_counting is not None:
                stop_counting()

    async def _start_position(self) -> str | None:
        """The position to resume after, or ``None`` to start over (logged with its reason)."""
        key = self.source.checkpoint_key
        checkpoint = await asyncio.to_thread(self._checkpoints.read, key)
        if checkpoint is not None and self._ends is not None:
            ends = self._ends

            def failed(exc: BaseException, delay: float) -> None:
                log.warning("cannot read where %s stands (%s), so cannot check the checkpoint "
                            "of %s yet; retrying in %.1f s", ends.topic, exc, key,
                            delay)  # fmt: skip

            self._ends_seen = await retry(ends.read, retriable=is_retriable,
                                          backoff=Backoff(self.config.backoff),
                                          on_retry=failed)  # fmt: skip
        decision = decide_start(checkpoint, self.config.topic, self._ends_seen,
                                restart=restarts(self.source))  # fmt: skip
        if isinstance(decision, Resume):
            self._saved = decision.position
            note = f" ({decision.note})" if decision.note else ""
            log.info("source %s resumes after position %s%s", key, decision.position, note)
            return decision.position
        if decision.reason is not None:
            log.warning("source %s starts over: %s", key, decision.reason)
        return None

    async def _read(self, resume_from: str | None) -> None:
        async for emission in self.source.emissions(resume_from):
            sequence = self._tracker.open(len(emission.events), emission.position)
            if emission.receipt is not None:
                self._receipts[sequence] = emission.receipt
            if not emission.events:
                self._complete(self._tracker.settle())
            for event in emission.events:
                await self._slots.acquire()
                task = asyncio.create_task(self._deliver(sequence, event))
                self._deliveries.add(task)
                task.add_done_callback(self._deliveries.discard)
        log.info("source %s is exhausted", self.source.checkpoint_key)

    async def _deliver(self, sequence: int, event: ImageEvent) -> None:
        failures = 0

        def failed(topic: str, exc: BaseException, delay: float) -> None:
            nonlocal failures
            failures += 1
            self._failures += 1
            self._healthy = False
            if self._watch is not None:
                self._watch.retried("publish")
                if self._watch.unreachable:
                    return
            if failures == 1 or failures % 10 == 0:
                log.warning("publishing %s to %s failed (%s); retrying every %.1f s",
                            event.id, topic, exc, delay)  # fmt: skip

        try:
            await self._publisher.send(self.config.topic, event.encode(), key=event.id.encode(),
                                       backoff=self.config.backoff, on_retry=failed)  # fmt: skip
        except RecordRefused as refused:
            self._refused += 1
            log.error("source %s: event %s is refused for good and not published: %s: %s",
                      self.source.checkpoint_key, event.id, refused.kind, refused)  # fmt: skip
        else:
            self._published += 1
        finally:
            self._slots.release()
        self._healthy = True
        self._complete(self._tracker.acknowledge(sequence))

    def _complete(self, completed: list[Completed]) -> None:
        for emission in completed:
            receipt = self._receipts.pop(emission.sequence, None)
            if receipt is not None and not receipt.done():
                receipt.set_result(None)

    async def _save_periodically(self) -> None:
        while True:
            await asyncio.sleep(self.config.checkpoint_interval_s)
            await self._save()

    async def _save(self) -> None:
        position = self._tracker.durable
        if position is None or position == self._saved:
            return
        if self._ends is not None:
            # Read after the position's events were acknowledged, so the ends include them; if
            # the broker does not answer, earlier ends are still reached by this topic.
            with contextlib.suppress(BrokerUnavailable):
                self._ends_seen = await self._ends.read()
            if self._ends_seen is None:
                return  # saved once the broker tells where the topic stands
        await asyncio.to_thread(
            functools.partial(self._checkpoints.save, self.source.checkpoint_key, position,
                              topic=self.config.topic, ends=self._ends_seen)
        )  # fmt: skip
        self._saved = position

    async def _drain(self) -> None:
        started = time.monotonic()
        if self._deliveries:
            _done, pending = await asyncio.wait(
                set(self._deliveries), timeout=self.config.drain_timeout_s
            )
            for task in pending:
                task.cancel()
            if pending:
                log.warning("%d events of %s were not acknowledged at shutdown; the "
                            "source resumes before them", len(pending),
                            self.source.checkpoint_key)  # fmt: skip
        for receipt in self._receipts.values():
            if not receipt.done():
                receipt.cancel()
        with contextlib.suppress(OSError):
            await self._save()
        log.info("source %s stopped: %d published, checkpoint %s (%.1f s to drain)",
                 self.source.checkpoint_key, self._published, self._saved,
                 time.monotonic() - started)  # fmt: skip
