"""Confirm a screen score or not, on which lane, re-decoded or not: one pure plan.

Fast mode scores an image first as cheaply as the plan allows (an approximate crop, a network at
a cheaper precision: the *screen*). A score that cannot matter is final; one that can is scored
again, as the exact crop, until a pass the decision may rest on. :class:`ConfirmationPlan` says
what comes after each pass, and the scorer only carries it out::

    first pass --plan.after(pass)--> Rescore(crop, lane) --> ... --> None: the last pass decides

For a still, after a pass of ``crop`` on ``lane`` scoring ``score``:

    first pass  crop         lane    score                  next
    exact mode  any          any     any                    none (nothing was approximate)
    fast        exact        exact   any                    none
    fast        any          any     below confirm_at       none (too safe to matter; the
                                                            first pass only)
    fast        approximate  exact   from confirm_at        exact crop on the exact lane
    fast        any          screen  from confirm_at        exact crop on the exact lane, or,
                                                            with the policy's thresholds: the
                                                            exact crop on the screen lane first
                                                            (if the crop was approximate), and
                                                            the exact lane only where that score
                                                            lies within ``margin`` of a threshold

For an animation or a video (:meth:`ConfirmationPlan.frames`), every sampled frame is an exact
crop scored on the first lane; the item's score is its worst frame's. On the screen lane, once
the worst screen score reaches ``confirm_at``, the frames within ``margin`` of it (any of which
may be the worst once scored exactly) are scored again on the exact lane.

Nothing here awaits, reads a clock or touches a device, so the whole table is tested as values.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.lanes import LaneName

__all__ = ["ConfirmationPlan", "Crop", "Pass", "can_change_decision"]


class Crop(enum.StrEnum):
    APPROXIMATE = "approximate"  # a fast-mode decode shortcut changed the pixels
    EXACT = "exact"


@dataclass(frozen=True, slots=True)
class Pass:
    """One scoring pass of an image: which crop, on which lane, what it scored, and whether it
    was the first (``confirm_at`` judges a first pass; a confirmation is judged by ``margin``)."""

    crop: Crop
    lane: LaneName
    score: float
    first: bool = True


@dataclass(frozen=True, slots=True)
class Rescore:
    """The next pass: the exact crop (decoded again if the last was approximate) on ``lane``."""

    lane: LaneName
    crop: Crop = Crop.EXACT


def can_change_decision(score: float, thresholds: Sequence[float], margin: float) -> bool:
    """Whether a score known to within ``margin`` of the reference may lie on the other side of a
    threshold from it (then only the reference score may decide). No thresholds: it may."""
    if not thresholds:
        return True
    return any(abs(score - threshold) <= margin for threshold in thresholds)


@dataclass(frozen=True, kw_only=True, slots=True)
class ConfirmationPlan:
    """What follows each pass (see the module docstring), for one scorer's configuration.

    ``mode``: the first pass's preprocessing (exact mode confirms nothing). ``confirm_at``: the
    lowest screen score that is scored again. ``thresholds``/``margin``: the active policy's
    thresholds and how far a screen-precision score on the exact crop may be from the reference
    (no thresholds: every confirmation goes to the exact lane)."""

    mode: Preprocessing
    confirm_at: float
    thresholds: tuple[float, ...] = ()
    margin: float = 0.0

    def after(self, last: Pass) -> Rescore | None:
        """The pass that must follow ``last`` for a still, or None: ``last`` decides."""
        if self.mode is not Preprocessing.FAST or (last.first and last.score < self.confirm_at):
            return None
        if last.lane is LaneName.EXACT:
            return Rescore(LaneName.EXACT) if last.crop is Crop.APPROXIMATE else None
        if not self.thresholds:
            return Rescore(LaneName.EXACT)
        if last.crop is Crop.APPROXIMATE:
            return Rescore(LaneName.SCREEN)  # the exact crop at the screen's precision first
        if can_change_decision(last.score, self.thresholds, self.margin):
            return Rescore(LaneName.EXACT)
        return None

    def frames(self, scores: Sequence[float], lane: LaneName) -> list[int]:
        """Which frames (by index into ``scores``, their first pass on ``lane``) to score again
        on the exact lane: on a screen lane whose worst score reached ``confirm_at``, those within
        ``margin`` of it; none otherwise."""
        if lane is not LaneName.SCREEN or not scores or max(scores) < self.confirm_at:
            return []
        top = max(scores)
        return [index for index, score in enumerate(scores) if score >= top - self.margin]
