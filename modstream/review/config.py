"""The review console's settings: a light module, so the command line reads its defaults here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modstream.kafka.settings import GroupTimings, KafkaSettings
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.stream.topics import Topics

if TYPE_CHECKING:
    from modstream.kafka.consume import ConsumerSettings

__all__ = ["ReviewSettings"]

TOPICS = Topics()


@dataclass(frozen=True, kw_only=True, slots=True)
class ReviewSettings:
    kafka: KafkaSettings
    topics: tuple[str, ...] = (TOPICS.review,)
    reviewed_topic: str = TOPICS.reviewed
    group_id: str = "modstream-review"
    lease_s: float = 300.0
    max_pending: int = 1000
    remember: int = 10_000  # recent decisions per partition read back at start
    # A reviewer's decision waits for no commit: the console commits once a second, and polls
    # less often than a scorer (its records wait for people anyway).
    timings: GroupTimings = field(
        default_factory=lambda: GroupTimings(commit_interval_s=1.0, poll_s=0.2)
    )
    # --bank-decisions: the hash of every image judged nsfw goes to this bank on bank_topic, so
    # the scorers following it match the next copy; None: decisions are not banked.
    bank_decisions: str | None = None
    bank_topic: str = TOPICS.banks

    def consumer(self) -> ConsumerSettings:
        from modstream.kafka.consume import ConsumerSettings

        return ConsumerSettings(
            topics=self.topics, group_id=self.group_id, role="review", timings=self.timings
        )

    fetch: FetchConfig = field(default_factory=FetchConfig)
    images: CacheConfig = field(default_factory=lambda: CacheConfig(max_entries=256, ttl_s=300))
