"""The labeler's settings: a light module, so the command line reads its defaults here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modstream.kafka.settings import GroupTimings, KafkaSettings
from modstream.labeler.policy import LABEL_PRESETS, LabelPolicy
from modstream.pipeline.stream.topics import Topics

if TYPE_CHECKING:
    from modstream.kafka.consume import ConsumerSettings

__all__ = ["LabelerSettings"]

TOPICS = Topics()


@dataclass(frozen=True, kw_only=True, slots=True)
class LabelerSettings:
    kafka: KafkaSettings
    labeler_did: str
    result_topics: tuple[str, ...] = (TOPICS.flagged, TOPICS.matched)
    reviewed_topic: str = TOPICS.reviewed
    label_topic: str = TOPICS.labels
    group_id: str = "modstream-labeler"
    policy: LabelPolicy = LABEL_PRESETS["porn"]
    max_pending: int = 1000
    timings: GroupTimings = field(default_factory=lambda: GroupTimings(commit_interval_s=1.0))

    def __post_init__(self) -> None:
        if not self.labeler_did.startswith("did:"):
            raise ValueError(f"the labeler's DID must start with did:, not {self.labeler_did!r}")

    def consumer(self) -> ConsumerSettings:
        from modstream.kafka.consume import ConsumerSettings

        return ConsumerSettings(
            topics=(*self.result_topics, self.reviewed_topic), group_id=self.group_id,
            role="labeler", timings=self.timings,
        )  # fmt: skip
