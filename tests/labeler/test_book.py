"""Which labels each decision adds: the label policy and the book, pure."""

from __future__ import annotations

from typing import Any

import pytest

from modstream.errors import ConfigError
from modstream.labeler.book import LabelBook, Pending
from modstream.labeler.labels import Label
from modstream.labeler.policy import LABEL_PRESETS, LabelRule, label_policy_from

POST = "at://did:plc:author/app.bsky.feed.post/3kabc"


def _result(decision: str, nsfw: float, index: int = 0, **meta: Any) -> dict[str, Any]:
    return {"id": f"{POST}#{index}", "decision": decision, "nsfw": nsfw,
            "meta": {"post": POST, "index": index, **meta}}  # fmt: skip


def _review(verdict: str) -> dict[str, Any]:
    return {**_result("review", 0.4), "label": verdict, "reviewer": "alice"}


def test_a_flagged_post_gets_one_label_however_many_images_earn_it() -> None:
    """The first flagged image labels the post (with its record cid); the others add nothing;
    review-band and safe results never get an automatic label."""
    book = LabelBook(LABEL_PRESETS["porn"])
    assert book.on_result(_result("review", 0.45)) == []
    assert book.on_result(_result("safe", 0.01)) == []
    first = book.on_result(_result("flagged", 0.9, 0, post_cid="bafyrecord"))
    assert first == [Pending(uri=POST, val="porn", cid="bafyrecord")]
    assert book.on_result(_result("flagged", 0.97, 1)) == []
    assert book.in_force(POST) == ["porn"]


def test_a_reviewers_safe_negates_and_the_model_does_not_relabel() -> None:
    """safe negates every value in force; a later automatic decision about another image of
    the post does not put it back; a reviewer's nsfw does."""
    book = LabelBook(LABEL_PRESETS["porn"])
    book.on_result(_result("flagged", 0.9))
    assert book.on_review(_review("safe")) == [Pending(uri=POST, val="porn", neg=True)]
    assert book.on_result(_result("flagged", 0.95, 2)) == []
    assert book.on_review(_review("skip")) == []
    assert book.on_review(_review("nsfw")) == [Pending(uri=POST, val="porn")]
    assert book.on_review(_review("nsfw")) == []


def test_a_review_band_post_is_labelled_only_by_a_person() -> None:
    """nsfw on a review item gives the policy's review value; safe on an unlabelled post
    negates nothing (there is nothing to take back)."""
    book = LabelBook(LABEL_PRESETS["graded"])
    assert book.on_review(_review("safe")) == []
    assert book.on_review(_review("nsfw")) == [Pending(uri=POST, val="porn")]


def test_records_about_no_bluesky_post_earn_nothing() -> None:
    """An upload or a Mastodon image (no at:// post in meta) is never labelled."""
    book = LabelBook(LABEL_PRESETS["porn"])
    assert book.on_result({"decision": "flagged", "nsfw": 0.99, "meta": {}}) == []
    other = {"decision": "flagged", "nsfw": 0.99, "meta": {"post": "https://x.test/1"}}
    assert book.on_result(other) == []
    assert book.on_review({"label": "nsfw", "meta": None}) == []


def test_the_book_rebuilt_from_the_log_adds_nothing_twice() -> None:
    """After a restart the labels in the log count: an in-force label is not published again,
    and a negation still keeps the model from relabelling."""
    book = LabelBook(LABEL_PRESETS["porn"])
    stored = Label(src="did:plc:l", uri=POST, val="porn", cts="2026-12-02T00:00:00.000Z")
    book.replay(stored)
    assert book.on_result(_result("flagged", 0.9)) == []
    negated = Label(src="did:plc:l", uri=POST, val="porn", neg=True,
                    cts="2026-12-02T00:00:01.000Z")  # fmt: skip
    book.replay(negated)
    assert book.on_result(_result("flagged", 0.9)) == []
    assert book.in_force(POST) == []


@pytest.mark.parametrize(
    ("nsfw", "value"), [(0.95, "porn"), (0.9, "porn"), (0.6, "sexual")]
)  # fmt: skip
def test_graded_rules_give_the_first_value_that_applies(nsfw: float, value: str) -> None:
    """graded: flagged at 0.9 or more is porn, other flagged is sexual."""
    assert LABEL_PRESETS["graded"].automatic("flagged", nsfw) == value
    assert LABEL_PRESETS["graded"].automatic("review", nsfw) is None


def test_a_policy_files_labels_object_and_its_mistakes() -> None:
    """A rules object parses; the review band, a bad value or unknown keys are refused; the
    declared values cover the rules and the review value."""
    policy = label_policy_from({"rules": [{"decision": "matched", "value": "graphic-media"},
                                          {"value": "nudity", "min_score": 0.7}],
                                "review_value": "porn"})  # fmt: skip
    assert policy.automatic("matched", 0.1) == "graphic-media"
    assert policy.values == ("graphic-media", "nudity", "porn")
    with pytest.raises(ConfigError, match="labelled by people"):
        LabelRule(value="porn", decision="review")
    with pytest.raises(ConfigError, match="lower-case"):
        label_policy_from({"rules": [{"value": "Porn 0.9"}]})
    with pytest.raises(ConfigError, match="unknown keys"):
        label_policy_from({"rules": [{"value": "porn", "score": 1}]})
    with pytest.raises(ConfigError, match="unknown label policy"):
        label_policy_from("strict")
