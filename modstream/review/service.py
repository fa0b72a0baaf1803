"""The review console's Kafka side: consume the review topics, record decisions, serve images.

Records of the review topics (result records the scorer routed to ``images.review``, and
optionally ``images.flagged`` for audits) enter the :class:`~modstream.review.queue.ReviewQueue`.
A decision is the original record plus ``label``, ``reviewer``, ``decided_at`` (and ``note``),
published to ``images.reviewed`` with ``acks=all``; only once the broker acknowledges it is the
item's offset finished, and offsets are committed only up to the first undecided item of each
partition. A restart therefore loses no pending item: what was not decided is consumed again.
The console is a :class:`~modstream.kafka.sink.Step` of the one group sink: at most
``max_pending`` items are held; at that bound the loop pauses the partitions and keeps polling,
so however long the queue stays full, the console stays in its group and keeps its leases.

Images are fetched here, through the same guarded fetcher as the scorer (the SSRF guard holds;
a reviewer's browser never fetches an arbitrary URL), and kept for a few minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

import orjson

from modstream.errors import UnknownItem
from modstream.kafka.access import check_access
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.consume import LoopStatistics
from modstream.kafka.sink import GroupSink, Partition
from modstream.media import sniff
from modstream.models.pdq import parse_hex
from modstream.pipeline.fetch.fetcher import Fetcher
from modstream.pipeline.match.records import bank_record
from modstream.pipeline.moderate.cache import TTLCache
from modstream.pipeline.stream.banks import ensure_bank_topic
from modstream.pipeline.stream.records import read_object
from modstream.review.config import ReviewSettings
from modstream.review.export import decided_ids
from modstream.review.queue import Item, ReviewQueue

__all__ = ["LABELS", "ReviewService", "ReviewSettings"]


def _dispute(record: dict[str, Any], label: str) -> dict[str, Any] | None:
    """A ``safe`` decision on an image a bank matched disputes that bank's entry (for its
    curators to look at; the entry stays until they remove it)."""
    match = record.get("match")
    if label != "safe" or record.get("decision") != "matched" or not isinstance(match, dict):
        return None
    return {"bank": match.get("bank"), "id": match.get("id")}


log = logging.getLogger("modstream.review")
LABELS = ("nsfw", "safe", "skip")
_ITEM_FIELDS = ("id", "url", "nsfw", "decision", "policy", "source", "meta", "observed_at",
                "model", "width", "height", "sha256", "pdq", "pdq_quality", "match")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Image:
    body: bytes
    content_type: str


class ReviewService:
    def __init__(self, settings: ReviewSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.queue: ReviewQueue[Partition] = ReviewQueue(
            lease_s=settings.lease_s, remember_decided=max(settings.remember * 4, 100_000)
        )
        self._images: TTLCache[Image] = TTLCache(settings.images)
        self._clock = clock
        self._stack = contextlib.AsyncExitStack()
        self._sink: GroupSink | None = None
        self._fetcher: Fetcher | None = None
        self._decided_today: Counter[str] = Counter()  # reviewer -> decisions since 00:00 UTC
        self._decisions: Counter[str] = Counter()  # label -> decisions since start
        self._today = self._day()
        self.malformed = 0

    async def __aenter__(self) -> Self:
        settings = self.settings
        try:
            await check_access(settings.kafka)
            created = await ensure_topics(
                settings.kafka, [TopicSpec(name, 4) for name in (*settings.topics,
                                                               settings.reviewed_topic)]
            )  # fmt: skip
            if created:
                log.info("created topics: %s", ", ".join(created))
            if settings.bank_decisions is not None:
                await ensure_bank_topic(settings.kafka, settings.bank_topic)
            # Decisions whose offsets could not be committed yet (an undecided item before them)
            # come back after a restart: knowing them, the console does not ask twice.
            self.queue.remember(
                await decided_ids(settings.kafka, settings.reviewed_topic, last=settings.remember)
            )
            self._fetcher = await self._stack.enter_async_context(Fetcher(settings.fetch))
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
            raise RuntimeError("the review service is not started")
        return self._sink

    @property
    def joined(self) -> asyncio.Event:
        """Set once the console's consumer has been assigned its partitions."""
        return self.sink.joined

    @property
    def consumed(self) -> int:
        """Records taken from the review topics since start (the consume loop counts them)."""
        return 0 if self._sink is None else self.consume_statistics().consumed

    def consume_statistics(self) -> LoopStatistics:
        return self.sink.loop.statistics()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume into the queue until ``stop`` is set, committing decided offsets as it goes."""
        await self.sink.run(stop)

    # -- the sink's step -------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self.settings.max_pending

    def room(self) -> int:
        return max(self.settings.max_pending - len(self.queue), 0)

    async def revoked(self, partitions: set[Partition]) -> None:
        """Pending items leave with their partitions (the sink commits the decided ones)."""
        dropped = self.queue.forget(partitions)
        if dropped:
            log.info("%d pending items moved to another review console with their partitions",
                     dropped)  # fmt: skip

    def take(self, partition: Partition, offset: int, value: bytes | None) -> None:
        record = read_object(value)
        if record is None or not isinstance(record.get("url"), str):
            self.malformed += 1
            log.warning("skipped a review record that is not a result record (%s[%d]@%d)",
                        partition.topic, partition.partition, offset)  # fmt: skip
            self.sink.finish(partition, offset)
            return
        item_id = str(record.get("id") or f"{partition.topic}:{partition.partition}:{offset}")
        record.setdefault("id", item_id)
        record["review_topic"] = partition.topic
        if not self.queue.add(item_id, record, partition, offset):
            self.sink.finish(partition, offset)  # decided before: a replay

    # -- what the API asks -----------------------------------------------------------------------

    def next_items(self, reviewer: str, limit: int) -> list[dict[str, Any]]:
        return [_view(item) for item in self.queue.lease(reviewer, limit, self._clock())]

    async def decide(
        self, item_id: str, label: str, reviewer: str, note: str | None = None
    ) -> dict[str, Any]:
        """Publish the decision and wait for the broker's acknowledgement; then the item leaves
        the queue and its offsets may be committed. One attempt: a broker that is away is a
        503 for the reviewer's browser to retry, not a request that hangs."""
        item = self.queue.begin_decision(item_id)
        now = self._clock()
        decided = {**item.record, "label": label, "reviewer": reviewer, "decided_at": now}
        if note:
            decided["note"] = note
        dispute = _dispute(item.record, label)
        if dispute is not None:
            decided["dispute"] = dispute
        try:
            banked = await self._bank(item_id, item.record, label, reviewer)
            if banked is not None:
                decided["banked"] = banked
            await self.sink.publisher.send(
                self.settings.reviewed_topic, orjson.dumps(decided), key=item_id.encode(),
                max_attempts=1,
            )  # fmt: skip
        except BaseException:
            self.queue.abandon_decision(item_id)
            raise
        for partition, offset in self.queue.finish_decision(item_id):
            self.sink.finish(partition, offset)
        self._count_decision(reviewer)
        self._decisions[label] += 1
        return decided

    async def _bank(
        self, item_id: str, record: dict[str, Any], label: str, reviewer: str
    ) -> dict[str, str] | None:
        """An nsfw decision's image hash, added to the decisions' bank before the decision is
        stored (a retried decision sends the same key again: compaction keeps one)."""
        bank, pdq = self.settings.bank_decisions, record.get("pdq")
        if bank is None or label != "nsfw" or not isinstance(pdq, str):
            return None
        try:
            bits = parse_hex(pdq)
        except ValueError:
            return None
        source = f"review by {reviewer}"
        key, value = bank_record(bank, bits, str(record.get("sha256") or item_id), source)
        await self.sink.publisher.send(self.settings.bank_topic, value, key=key, max_attempts=1)
        return {"bank": bank, "pdq": pdq}

    async def image(self, item_id: str) -> Image:
        cached = self._images.get(item_id)
        if cached is not None:
            return cached
        item = self._pending(item_id)
        assert self._fetcher is not None
        fetched = await self._fetcher.fetch(str(item.record["url"]))
        image = Image(fetched.body, _image_type(fetched.body))
        self._images.put(item_id, image)
        return image

    def statistics(self, reviewer: str) -> dict[str, Any]:
        """What the page's header shows (JSON): the queue, and today's decisions."""
        self._roll_day()
        queued = self.queue.statistics(self._clock())
        return {
            "pending": queued.pending,
            "leased": queued.leased,
            "consumed": self.consumed,
            "decided_today": sum(self._decided_today.values()),
            "decided_today_by_you": self._decided_today[reviewer],
        }

    def decisions_by_label(self) -> dict[str, int]:
        """Decisions stored since start, by label (every label present, zeros included)."""
        return {label: self._decisions[label] for label in LABELS}

    def now(self) -> float:
        return self._clock()

    def _pending(self, item_id: str) -> Item[Partition]:
        found = self.queue.get(item_id)
        if found is None:
            raise UnknownItem(f"no item {item_id!r} is waiting for review here")
        return found

    def _count_decision(self, reviewer: str) -> None:
        self._roll_day()
        self._decided_today[reviewer] += 1

    def _roll_day(self) -> None:
        today = self._day()
        if today != self._today:
            self._today, self._decided_today = today, Counter()

    def _day(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).date().isoformat()


def _view(item: Item[Any]) -> dict[str, Any]:
    record = item.record
    view = {key: record.get(key) for key in _ITEM_FIELDS}
    view["topic"] = record.get("review_topic")
    view["lease_until"] = item.lease_until
    return view


def _image_type(body: bytes) -> str:
    """The type the bytes are, not what their server claimed (sent with nosniff)."""
    medium = sniff(body[:16])
    return "application/octet-stream" if medium is None else medium.mime
