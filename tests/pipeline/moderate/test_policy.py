"""Policies: decisions, and the confirmation floor fast mode takes from them."""

from __future__ import annotations

import pytest

from modstream.pipeline.moderate.policy import PRESETS, Decision, Policy


def test_the_confirmation_floor_follows_the_lowest_threshold() -> None:
    """Presets keep 0.05; a threshold below 0.075 pulls the floor to 0.025 under it, never < 0."""
    assert {policy.confirmation_floor(0.05) for policy in PRESETS.values()} == {0.05}
    review = Policy(name="x", flag_at=0.5, review_at=0.06)
    assert review.confirmation_floor(0.05) == pytest.approx(0.035)
    assert Policy(name="y", flag_at=0.01).confirmation_floor(0.05) == 0.0


def test_a_review_band_sits_between_safe_and_flagged() -> None:
    policy = Policy(name="z", flag_at=0.8, review_at=0.3)
    assert [policy.decide(s) for s in (0.29, 0.3, 0.79, 0.8)] == [
        Decision.SAFE, Decision.REVIEW, Decision.REVIEW, Decision.FLAGGED,
    ]  # fmt: skip
