"""What moderation decides of an image. Pure values."""

from __future__ import annotations

import enum

__all__ = ["Decision"]


class Decision(enum.StrEnum):
    FLAGGED = "flagged"
    REVIEW = "review"
    SAFE = "safe"
    MATCHED = "matched"  # its hash matched a bank of known content (pipeline/match)
