"""The verdict service's Kafka side: results and reviewers' decisions in, the table out.

    results, images.reviewed --(group modstream-verdicts: each replica its share)--> entries
        --> PREFIX.verdicts (compacted, keyed by image) --(every replica reads all of it)-->
        the table --> lookups

Each replica writes the entries of its share of the input, and every replica builds its table
from the whole verdict topic, so all replicas answer alike, and a restarted one reads the topic
to its end (``/readyz`` 503 until then) and answers as before. An input offset is committed once
its entry is acknowledged (at least once: a replayed record writes the same key again, which
changes nothing). While the broker is away the table keeps answering from memory; after
``stale_after_s`` without an answer ``/readyz`` says it is stale.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Self

from modstream.errors import RecordRefused
from modstream.kafka.access import check_access
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.changes import Change, Changes, changes
from modstream.kafka.sink import GroupSink, Partition
from modstream.pipeline.stream.records import read_object
from modstream.verdicts.config import VerdictSettings
from modstream.verdicts.entries import Entry, entry_of_result, entry_of_review, read_entry
from modstream.verdicts.metrics import VerdictMetrics
from modstream.verdicts.table import VerdictTable

__all__ = ["VerdictService"]

log = logging.getLogger("modstream.verdicts")

_PROBE_S = 1.0  # how often the replica asks the broker whether it still answers
_APPLY_CHUNK = 2000  # entries applied between two yields to the event loop (lookups go on)


class VerdictService:
    def __init__(
        self,
        settings: VerdictSettings,
        metrics: VerdictMetrics | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or VerdictMetrics()
        self.table = VerdictTable()
        self._clock = clock
        self._stack = contextlib.AsyncExitStack()
        self._changes: Changes | None = None
        self._sink: GroupSink | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self.loaded = asyncio.Event()  # the verdict topic read to its end
        self._answered_at = time.monotonic()
        self.malformed = 0  # input records that are not JSON objects
        self.unreadable = 0  # verdict topic records this version cannot read

    async def __aenter__(self) -> Self:
        settings = self.settings
        try:
            await check_access(settings.kafka)
            inputs = [TopicSpec(name, 4) for name in (*settings.result_topics,
                                                       settings.reviewed_topic)]  # fmt: skip
            verdicts = TopicSpec(settings.verdict_topic, settings.verdict_partitions,
                                 compacted=True)  # fmt: skip
            created = await ensure_topics(settings.kafka, [*inputs, verdicts])
            if created:
                log.info("created topics: %s", ", ".join(created))
            reading = changes(settings.kafka, settings.verdict_topic, role="verdicts")
            self._changes = await self._stack.enter_async_context(reading)
            self._sink = GroupSink(settings.kafka, settings.consumer(), self, logger=log)
            await self._stack.enter_async_context(self._sink)
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for task in self._writes:
            task.cancel()
        await asyncio.gather(*self._writes, return_exceptions=True)
        await self._stack.aclose()

    @property
    def sink(self) -> GroupSink:
        if self._sink is None:
            raise RuntimeError("the verdict service is not started")
        return self._sink

    # -- the table ---------------------------------------------------------------------------

    async def rebuild(self) -> float:
        """Read the verdict topic to its end into the table; the seconds it took."""
        assert self._changes is not None
        started = time.monotonic()
        async for batch in self._changes.batches_to_end():
            await self._apply(batch, live=False)
        took = time.monotonic() - started
        self._answered_at = time.monotonic()
        self.metrics.rebuild.set(took)
        self._count()
        self.loaded.set()
        stats = self.table.statistics()
        log.info("verdict table from %s: %d images, %d posts in %.1f s",
                 self.settings.verdict_topic, stats.images, stats.posts, took)  # fmt: skip
        return took

    async def _follow(self) -> None:
        assert self._changes is not None
        while True:
            batch = await self._changes.next_batch(timeout_s=0.1)
            if batch:
                self._answered_at = time.monotonic()
                await self._apply(batch, live=True)
                self._count()

    async def _probe(self) -> None:
        """Note when the broker last answered: a quiet topic is not a silent broker."""
        assert self._changes is not None
        while True:
            if await self._changes.answered(timeout_s=_PROBE_S * 2):
                self._answered_at = time.monotonic()
            self.metrics.silence.set(self.silence_s)
            await asyncio.sleep(_PROBE_S)

    async def _apply(self, batch: list[Change], *, live: bool) -> None:
        now = self._clock()
        for start in range(0, len(batch), _APPLY_CHUNK):
            for _key, value in batch[start : start + _APPLY_CHUNK]:
                entry = None if value is None else read_entry(value)
                if entry is None:
                    self.unreadable += value is not None
                    continue
                self.table.apply(entry)
                if live and not entry.review and entry.at > 0:
                    self.metrics.freshness.observe(max(now - entry.at, 0.0))
            await asyncio.sleep(0)

    def _count(self) -> None:
        stats = self.table.statistics()
        for kind in ("images", "posts", "hashes", "overrides"):
            self.metrics.entries.labels(kind).set(getattr(stats, kind))

    @property
    def silence_s(self) -> float:
        return time.monotonic() - self._answered_at

    def not_ready(self) -> str | None:
        """Why ``/readyz`` is 503, or None when the table is current."""
        if not self.loaded.is_set():
            return f"reading {self.settings.verdict_topic} to its end"
        if self.silence_s > self.settings.stale_after_s:
            return (
                f"stale: the broker has not answered for {self.silence_s:.0f} s (lookups answer "
                "from memory)"
            )
        return None

    # -- the run -----------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Rebuild the table, then follow the verdict topic and write the input's entries until
        ``stop``; a write the broker denies stops the run, which raises why."""
        rebuilding = asyncio.ensure_future(self.rebuild())
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({rebuilding, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not rebuilding.done():
            rebuilding.cancel()
            await asyncio.gather(rebuilding, stopping, return_exceptions=True)
            return
        stopping.cancel()
        rebuilding.result()
        followers = [asyncio.create_task(self._follow(), name="verdicts-follow"),
                     asyncio.create_task(self._probe(), name="verdicts-probe")]  # fmt: skip
        for follower in followers:
            follower.add_done_callback(self._failing)
        try:
            if await self.sink.start(stop):
                await self.sink.run(stop)
        finally:
            for follower in followers:
                follower.cancel()
            await asyncio.gather(*followers, return_exceptions=True)

    def _failing(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (failure := task.exception()) is not None:
            self.sink.fail(failure)

    # -- the sink's step ---------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.settings.max_pending

    def room(self) -> int:
        return self.settings.max_pending - len(self._writes)

    def take(self, partition: Partition, offset: int, value: bytes | None) -> None:
        record = read_object(value)
        entry: Entry | None = None
        if record is None:
            self.malformed += 1
        elif partition.topic == self.settings.reviewed_topic:
            entry = entry_of_review(record)
        else:
            entry = entry_of_result(record)
        if entry is None:
            self.sink.finish(partition, offset)
            return
        task = asyncio.create_task(self._write(entry, partition, offset))
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writes.discard(task)
        if not task.cancelled() and (failure := task.exception()) is not None:
            self.sink.fail(failure)

    async def _write(self, entry: Entry, partition: Partition, offset: int) -> None:
        try:
            await self.sink.publisher.send(
                self.settings.verdict_topic, entry.value(), key=entry.key
            )
        except RecordRefused as refused:  # an entry is a URL and a few fields: not in practice
            log.error("the verdict for %s was refused and is not stored: %s", entry.url, refused)
        self.sink.finish(partition, offset)

    async def revoked(self, partitions: set[Partition]) -> None:
        """Finish the writes under way before the partitions leave, so their offsets commit."""
        if self._writes:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.timings.session_timeout_s / 2):
                    await asyncio.gather(*self._writes, return_exceptions=True)
