"""The decision once the hash banks have spoken: pure."""

from __future__ import annotations

import pytest

from modstream.pipeline.match.banks import BankAction
from modstream.pipeline.match.matcher import Match
from modstream.pipeline.moderate.moderator import decide
from modstream.pipeline.moderate.policy import Decision, Policy

POLICY = Policy(name="t", flag_at=0.8, review_at=0.3)


def _match(action: BankAction) -> Match:
    return Match(bank="b", id="i", distance=3, quality=90, action=action)


@pytest.mark.parametrize(
    ("nsfw", "action", "decision"),
    [
        (0.01, BankAction.MATCH, Decision.MATCHED),  # known content, whatever the score
        (0.95, BankAction.MATCH, Decision.MATCHED),
        (0.50, BankAction.SAFE, Decision.SAFE),  # known-good content skips review
        (0.95, BankAction.SAFE, Decision.FLAGGED),  # ... but is not waved past the flag line
        (0.10, BankAction.SAFE, Decision.SAFE),
        (0.50, None, Decision.REVIEW),
        (0.95, None, Decision.FLAGGED),
    ],
)
def test_a_match_decides_known_content_and_a_safe_bank_skips_review(
    nsfw: float, action: BankAction | None, decision: Decision
) -> None:
    """'match' banks decide matched; 'safe' banks turn review into safe and nothing else."""
    assert decide(POLICY, nsfw, None if action is None else _match(action)) is decision
