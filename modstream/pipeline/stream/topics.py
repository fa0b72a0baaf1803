"""Every topic's name, in one value: the stream's (one incoming, one per decision, one for
errors), the review console's decisions, the shared hash banks, the labeler's label log and
the verdict service's table.

``matched`` holds images whose hash matched a bank of known content: often the most sensitive
records a deployment has (known abuse material), so it is its own topic, readable only by those
who must act on it (Kafka ACLs: docs/matching.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from modstream.pipeline.moderate.policy import Decision

__all__ = ["Topics"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Topics:
    incoming: str = "images.incoming"
    flagged: str = "images.flagged"
    review: str = "images.review"
    safe: str = "images.safe"
    matched: str = "images.matched"
    errors: str = "images.errors"
    reviewed: str = "images.reviewed"  # the review console's decisions
    banks: str = "images.banks"  # the shared hash banks (compacted)
    labels: str = "images.labels"  # the labeler's signed labels (one partition)
    verdicts: str = "images.verdicts"  # the verdict service's newest word per image (compacted)

    @classmethod
    def with_prefix(cls, prefix: str) -> Topics:
        """``PREFIX.incoming``, ``PREFIX.flagged``, ...; the defaults use ``images``."""
        return cls(**{name: f"{prefix}.{name}" for name in cls.__dataclass_fields__})

    def for_decision(self, decision: Decision) -> str:
        return {
            Decision.FLAGGED: self.flagged,
            Decision.REVIEW: self.review,
            Decision.MATCHED: self.matched,
        }.get(decision, self.safe)

    def outputs(self) -> tuple[str, ...]:
        return (self.flagged, self.review, self.safe, self.matched, self.errors)
