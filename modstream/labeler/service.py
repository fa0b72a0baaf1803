"""The labeler's Kafka side: decisions in, signed labels stored in order, offsets committed after.

    images.flagged, images.matched, images.reviewed  (its own consumer group)
        -> LabelBook (pure: which labels a decision adds)  -> sign
        -> the label topic (one partition, acks=all; seq = offset + 1)  -> LabelLog (served)
        -> the decision's offset may be committed

Start-up reads the label topic back (:func:`~modstream.kafka.changes.read_log`): the log and the
book continue where they stopped, so a restart serves the same labels with the same signatures
and publishes none twice. Labels are written by one task, one after another, so seqs follow the
order decisions were taken; a decision's offset is committed only once all its labels are stored
(a crash in between replays the decision, and the book, rebuilt from the log, adds nothing
twice). Run one labeler per label topic: it is the topic's only writer.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Self

import orjson

from modstream.errors import RecordRefused
from modstream.kafka.access import check_access
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.changes import read_log
from modstream.kafka.sink import GroupSink, Partition
from modstream.labeler.book import LabelBook, Pending
from modstream.labeler.config import LabelerSettings
from modstream.labeler.keys import SigningKey
from modstream.labeler.labels import Label, now_cts
from modstream.labeler.log import LabelLog
from modstream.labeler.metrics import LabelerMetrics
from modstream.pipeline.stream.records import read_object

__all__ = ["LabelerService", "LabelerSettings", "decode_stored", "encode_stored"]

log = logging.getLogger("modstream.labeler")


def encode_stored(label: Label) -> bytes:
    """A signed label as the label topic stores it: its JSON form (``sig`` as ``$bytes``)."""
    return orjson.dumps(label.json_fields())


def decode_stored(value: bytes) -> Label:
    fields = orjson.loads(value)
    encoded = fields["sig"]["$bytes"]
    sig = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return Label(
        src=fields["src"], uri=fields["uri"], val=fields["val"], cts=fields["cts"],
        cid=fields.get("cid"), neg=bool(fields.get("neg", False)), exp=fields.get("exp"), sig=sig,
    )  # fmt: skip


@dataclass(slots=True)
class _Work:
    pending: list[Pending]
    partition: Partition
    offset: int


class LabelerService:
    """The group sink's step: decisions in, labels out (``log``, ``book``)."""

    def __init__(
        self, settings: LabelerSettings, key: SigningKey, metrics: LabelerMetrics | None = None
    ) -> None:
        self.settings = settings
        self.metrics = metrics or LabelerMetrics()
        self.log = LabelLog()
        self.book = LabelBook(settings.policy)
        self.malformed = 0
        for value in settings.policy.values:  # every series exists from the start, at 0
            for neg in ("false", "true"):
                self.metrics.labels.labels(value, neg)
        self._key = key
        self._work: asyncio.Queue[_Work] = asyncio.Queue(settings.max_pending)
        self._stack = contextlib.AsyncExitStack()
        self._sink: GroupSink | None = None

    async def __aenter__(self) -> Self:
        settings = self.settings
        try:
            await check_access(settings.kafka)
            topics = [TopicSpec(settings.label_topic, 1)]
            topics += [TopicSpec(name, 4) for name in (*settings.result_topics,
                                                        settings.reviewed_topic)]  # fmt: skip
            await ensure_topics(settings.kafka, topics)
            for offset, value in await read_log(settings.kafka, settings.label_topic,
                                                role="labeler"):  # fmt: skip
                label = decode_stored(value)
                self.log.append(offset + 1, label)
                self.book.replay(label)
            self.metrics.seq.set(self.log.head)
            log.info("label log %s: %d labels, seq %d", settings.label_topic, len(self.log),
                     self.log.head)  # fmt: skip
            self._stack.callback(self.log.close)
            sink = GroupSink(settings.kafka, settings.consumer(), self, logger=log)
            self._sink = await self._stack.enter_async_context(sink)
            await sink.start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    @property
    def sink(self) -> GroupSink:
        if self._sink is None:
            raise RuntimeError("the labeler is not started")
        return self._sink

    @property
    def joined(self) -> asyncio.Event:
        return self.sink.joined

    async def run(self, stop: asyncio.Event) -> None:
        """Consume and label until ``stop``; the writer stores labels in decision order. A writer
        that cannot store (the label topic denied) stops the run, which raises why."""
        sink = self.sink
        writer = asyncio.create_task(self._write(), name="modstream-label-writer")
        writer.add_done_callback(_failing(sink))
        try:
            await sink.run(stop)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    # -- the sink's step -------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.settings.max_pending

    def room(self) -> int:
        return self._work.maxsize - self._work.qsize()

    def take(self, partition: Partition, offset: int, value: bytes | None) -> None:
        record = read_object(value)
        if record is None:
            self.malformed += 1
            self.sink.finish(partition, offset)
            return
        if partition.topic == self.settings.reviewed_topic:
            pending = self.book.on_review(record)
        else:
            pending = self.book.on_result(record)
        if not pending:
            self.sink.finish(partition, offset)
            return
        self._work.put_nowait(_Work(pending, partition, offset))  # room() keeps it bounded

    async def revoked(self, partitions: set[Partition]) -> None:
        """Store what was decided before the partitions leave, so the sink commits its offsets."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.timings.session_timeout_s / 2):
                await self._work.join()

    # -- storing -----------------------------------------------------------------------------------

    async def _write(self) -> None:
        while True:
            work = await self._work.get()
            for pending in work.pending:
                await self._store(pending)
            self.sink.finish(work.partition, work.offset)
            self._work.task_done()

    async def _store(self, pending: Pending) -> None:
        label = Label(
            src=self.settings.labeler_did, uri=pending.uri, val=pending.val, cid=pending.cid,
            neg=pending.neg, cts=now_cts(),
        ).signed(self._key)  # fmt: skip
        try:  # sent again while the broker is away: the writer waits, so the order holds
            offset = await self.sink.publisher.send(
                self.settings.label_topic, encode_stored(label), partition=0
            )
        except RecordRefused as refused:  # a label is a few hundred bytes: not in practice
            log.error("a label for %s was refused and is not stored: %s", label.uri, refused)
            return
        self.log.append(offset + 1, label)
        self.metrics.labels.labels(label.val, "true" if label.neg else "false").inc()
        self.metrics.seq.set(self.log.head)


def _failing(sink: GroupSink) -> Callable[[asyncio.Task[None]], None]:
    """A done callback that stops ``sink`` with the task's failure, if it failed."""

    def done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (failure := task.exception()) is not None:
            sink.fail(failure)

    return done
