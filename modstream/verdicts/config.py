"""The verdict service's settings: a light module, so the command line reads its defaults here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modstream.kafka.settings import GroupTimings, KafkaSettings
from modstream.pipeline.stream.topics import Topics

if TYPE_CHECKING:
    from modstream.kafka.consume import ConsumerSettings

__all__ = ["VerdictSettings"]

TOPICS = Topics()


@dataclass(frozen=True, kw_only=True, slots=True)
class VerdictSettings:
    kafka: KafkaSettings
    # The decisions' topics (errors carry no verdict) and the reviewers' decisions.
    result_topics: tuple[str, ...] = (TOPICS.flagged, TOPICS.review, TOPICS.safe, TOPICS.matched)
    reviewed_topic: str = TOPICS.reviewed
    verdict_topic: str = TOPICS.verdicts  # compacted: the newest entry per image
    verdict_partitions: int = 4
    group_id: str = "modstream-verdicts"
    max_pending: int = 1000  # entries being written at once (the consumer pauses at the bound)
    # /readyz says "stale" when the broker has not answered for this long: lookups still answer
    # from memory, but a load balancer may prefer a replica that is current.
    stale_after_s: float = 30.0
    max_batch: int = 500  # subjects in one POST /v1/verdicts
    timings: GroupTimings = field(default_factory=lambda: GroupTimings(commit_interval_s=1.0))

    def __post_init__(self) -> None:
        if self.stale_after_s <= 0:
            raise ValueError(f"--stale-after must be above 0 s, got {self.stale_after_s}")
        if not 1 <= self.max_batch <= 10_000:
            raise ValueError(f"--max-batch must be within 1..10000, got {self.max_batch}")

    def consumer(self) -> ConsumerSettings:
        from modstream.kafka.consume import ConsumerSettings

        return ConsumerSettings(
            topics=(*self.result_topics, self.reviewed_topic), group_id=self.group_id,
            role="verdicts", timings=self.timings,
        )  # fmt: skip
