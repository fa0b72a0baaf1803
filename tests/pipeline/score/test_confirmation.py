"""The confirmation plan over its whole table: what follows each pass of a still, and which
frames of an animation or a video are scored again."""

from __future__ import annotations

import pytest

from modstream.models.preprocess import Preprocessing
from modstream.pipeline.score.confirmation import (
    ConfirmationPlan,
    Crop,
    Pass,
    Rescore,
    can_change_decision,
)
from modstream.pipeline.score.lanes import LaneName

FAST, EXACT_MODE = Preprocessing.FAST, Preprocessing.EXACT
APPROX, EXACT = Crop.APPROXIMATE, Crop.EXACT
SCREEN_LANE, EXACT_LANE = LaneName.SCREEN, LaneName.EXACT
BARE = ConfirmationPlan(mode=FAST, confirm_at=0.05)  # no thresholds known
POLICY = ConfirmationPlan(mode=FAST, confirm_at=0.05, thresholds=(0.3, 0.8), margin=0.04)


@pytest.mark.parametrize(
    ("plan", "last", "after"),
    [
        # exact mode: nothing is approximate, nothing is confirmed
        (ConfirmationPlan(mode=EXACT_MODE, confirm_at=0.05), Pass(APPROX, SCREEN_LANE, 0.9), None),
        # the exact crop on the exact lane is the reference
        (BARE, Pass(EXACT, EXACT_LANE, 0.9), None),
        (POLICY, Pass(EXACT, EXACT_LANE, 0.31), None),
        # a first pass below confirm_at is too safe to matter, whatever was approximate
        (BARE, Pass(APPROX, EXACT_LANE, 0.0499), None),
        (BARE, Pass(APPROX, SCREEN_LANE, 0.0499), None),
        (POLICY, Pass(EXACT, SCREEN_LANE, 0.01), None),
        # an approximate crop on the exact lane: the exact crop there
        (BARE, Pass(APPROX, EXACT_LANE, 0.05), Rescore(EXACT_LANE)),
        (POLICY, Pass(APPROX, EXACT_LANE, 0.5), Rescore(EXACT_LANE)),
        # the screen lane without thresholds: the exact lane, re-decoded or not
        (BARE, Pass(APPROX, SCREEN_LANE, 0.05), Rescore(EXACT_LANE)),
        (BARE, Pass(EXACT, SCREEN_LANE, 0.9), Rescore(EXACT_LANE)),
        # the screen lane with thresholds: an approximate crop goes again as the exact crop on
        # the screen lane first
        (POLICY, Pass(APPROX, SCREEN_LANE, 0.05), Rescore(SCREEN_LANE)),
        # ... and the exact crop on the screen lane goes to the exact lane only near a threshold
        (POLICY, Pass(EXACT, SCREEN_LANE, 0.26), Rescore(EXACT_LANE)),
        (POLICY, Pass(EXACT, SCREEN_LANE, 0.335), Rescore(EXACT_LANE)),
        (POLICY, Pass(EXACT, SCREEN_LANE, 0.55), None),
        (POLICY, Pass(EXACT, SCREEN_LANE, 0.95), None),
        # a confirmation is judged by the margin, not by confirm_at (a threshold below it)
        (ConfirmationPlan(mode=FAST, confirm_at=0.05, thresholds=(0.03,), margin=0.04),
         Pass(EXACT, SCREEN_LANE, 0.04, first=False), Rescore(EXACT_LANE)),
        (POLICY, Pass(EXACT, SCREEN_LANE, 0.04, first=False), None),
    ],
)  # fmt: skip
def test_what_follows_a_pass_of_a_still(
    plan: ConfirmationPlan, last: Pass, after: Rescore | None
) -> None:
    assert plan.after(last) == after


@pytest.mark.parametrize("plan", [BARE, POLICY])
def test_a_still_ends_in_at_most_three_passes_and_near_a_threshold_on_the_exact_lane(
    plan: ConfirmationPlan,
) -> None:
    """Played to the end with the same score every pass, the plan stops, and any score it lets
    stand on the screen lane is clear of every threshold by more than the margin."""
    for crop in Crop:
        for lane in LaneName:
            for score in (0.0, 0.05, 0.27, 0.3, 0.5, 0.79, 0.84, 1.0):
                last, passes = Pass(crop, lane, score), 1
                while (step := plan.after(last)) is not None:
                    last, passes = Pass(step.crop, step.lane, score, first=False), passes + 1
                assert passes <= 3
                if last.lane is SCREEN_LANE and score >= plan.confirm_at:
                    assert not can_change_decision(score, plan.thresholds, plan.margin)
                if score >= plan.confirm_at and lane is EXACT_LANE:
                    assert last.crop is EXACT


@pytest.mark.parametrize(
    ("scores", "lane", "again"),
    [
        ([0.01, 0.02, 0.04], SCREEN_LANE, []),  # the worst is below confirm_at
        ([0.01, 0.9, 0.88, 0.5], SCREEN_LANE, [1, 2]),  # within the margin of the worst
        ([0.06, 0.03, 0.05], SCREEN_LANE, [0, 1, 2]),  # close to a worst at the floor
        ([0.01, 0.9, 0.88], EXACT_LANE, []),  # exact-lane scores are the reference
        ([], SCREEN_LANE, []),
    ],
)
def test_which_frames_are_scored_again(
    scores: list[float], lane: LaneName, again: list[int]
) -> None:
    assert POLICY.frames(scores, lane) == again


def test_a_score_changes_a_decision_only_within_the_margin_of_a_threshold() -> None:
    """Known answers: within the margin of either threshold (edges included) it may; farther
    from both it may not; with no thresholds every score may."""
    thresholds, margin = (0.3, 0.8), 0.05
    assert can_change_decision(0.25, thresholds, margin)
    assert can_change_decision(0.35, thresholds, margin)
    assert can_change_decision(0.78, thresholds, margin)
    assert not can_change_decision(0.2, thresholds, margin)
    assert not can_change_decision(0.55, thresholds, margin)
    assert not can_change_decision(0.9, thresholds, margin)
    assert can_change_decision(0.55, (), margin)
