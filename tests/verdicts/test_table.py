"""The verdict table: a post's verdict is the worst of its images', an image's newest verdict
replaces its part, a reviewer overrides the model, the same bytes at another URL are known."""

from __future__ import annotations

from typing import Any

import pytest

from modstream.errors import InvalidSubject
from modstream.pipeline.moderate.brandsafety import Risk
from modstream.verdicts.entries import Entry, entry_of_result, entry_of_review, read_entry
from modstream.verdicts.subjects import MAX_SUBJECT_BYTES, Subject, subject_from
from modstream.verdicts.table import VerdictTable

POST = "at://did:plc:alice/app.bsky.feed.post/3kpair"
SHA_A, SHA_B = "a" * 64, "b" * 64


def result(url: str, nsfw: float, decision: str, risk: str, *, at: float = 100.0,
           sha: str | None = None, post: str | None = POST) -> dict[str, Any]:  # fmt: skip
    record: dict[str, Any] = {
        "id": url, "url": url, "source": "jetstream", "observed_at": at - 1, "published_at": at,
        "meta": {} if post is None else {"post": post}, "nsfw": nsfw, "decision": decision,
        "brand_safety": {"taxonomy": "iab-content-3.1", "risk": risk, "categories": []},
    }  # fmt: skip
    if sha is not None:
        record["sha256"] = sha
    return record


def through_topic(entry: Entry | None) -> Entry:
    """What a replica reads back: the entry's value, decoded."""
    assert entry is not None
    read = read_entry(entry.value())
    assert read == entry
    return read


def table_of(*records: dict[str, Any]) -> VerdictTable:
    table = VerdictTable()
    for record in records:
        reviewed = "label" in record
        entry = entry_of_review(record) if reviewed else entry_of_result(record)
        table.apply(through_topic(entry))
    return table


def post() -> Subject:
    return Subject.of("post", POST)


def test_a_posts_verdict_is_the_worst_of_its_images() -> None:
    table = table_of(
        result("https://cdn/a", 0.02, "safe", "none", sha=SHA_A),
        result("https://cdn/b", 0.91, "flagged", "high", at=101.0, sha=SHA_B),
    )
    verdict = table.lookup(post())
    assert verdict is not None
    assert (verdict.risk, verdict.nsfw, verdict.decided_by, verdict.images) == (
        Risk.HIGH, 0.91, "model", 2)  # fmt: skip
    assert verdict.updated_at == 101.0
    by_url = table.lookup(Subject.of("url", "https://cdn/a"))
    assert by_url is not None and by_url.risk is Risk.NONE and by_url.images == 1
    by_sha = table.lookup(Subject.of("sha256", SHA_B.upper()))
    assert by_sha is not None and by_sha.risk is Risk.HIGH


def test_a_later_verdict_for_an_image_replaces_its_part_and_a_replay_changes_nothing() -> None:
    first = result("https://cdn/b", 0.91, "flagged", "high", sha=SHA_B)
    table = table_of(
        result("https://cdn/a", 0.06, "safe", "low", sha=SHA_A),
        first,
        result("https://cdn/b", 0.2, "safe", "low", at=105.0, sha=SHA_B),
        first,  # the earlier result replayed (at least once): older, so ignored
    )
    verdict = table.lookup(post())
    assert verdict is not None and verdict.risk is Risk.LOW and verdict.images == 2
    assert verdict.nsfw == 0.2  # among equals, the higher score


def test_a_reviewers_nsfw_is_at_least_high_and_safe_is_none_over_the_model() -> None:
    flagged = result("https://cdn/b", 0.99, "flagged", "floor", sha=SHA_B)
    middle = result("https://cdn/a", 0.4, "review", "medium", sha=SHA_A)
    table = table_of(middle, flagged)
    assert table.lookup(post()).risk is Risk.FLOOR  # type: ignore[union-attr]
    table.apply(through_topic(entry_of_review({**flagged, "label": "safe", "decided_at": 200.0})))
    verdict = table.lookup(post())
    assert verdict is not None and verdict.risk is Risk.MEDIUM  # the other image now the worst
    table.apply(through_topic(entry_of_review({**middle, "label": "nsfw", "decided_at": 201.0})))
    verdict = table.lookup(post())
    assert verdict is not None
    assert (verdict.risk, verdict.decided_by, verdict.updated_at) == (Risk.HIGH, "reviewer", 201.0)
    # A model verdict that comes later (the image scored again) does not undo a reviewer's.
    table.apply(through_topic(entry_of_result(result("https://cdn/b", 0.99, "flagged", "floor",
                                                     at=300.0, sha=SHA_B))))  # fmt: skip
    image = table.lookup(Subject.of("url", "https://cdn/b"))
    assert image is not None and image.risk is Risk.NONE and image.decided_by == "reviewer"


def test_a_reviewers_nsfw_on_a_floor_image_stays_floor() -> None:
    flagged = result("https://cdn/b", 0.99, "flagged", "floor", sha=SHA_B)
    entry = entry_of_review({**flagged, "label": "nsfw", "decided_at": 200.0})
    assert entry is not None and entry.risk is Risk.FLOOR


def test_the_same_bytes_at_another_url_are_known_by_sha256_with_the_review() -> None:
    seen = result("https://cdn/a", 0.5, "review", "medium", sha=SHA_A)
    table = table_of(seen, {**seen, "label": "nsfw", "decided_at": 150.0})
    copy = result("https://mirror/x", 0.5, "review", "medium", sha=SHA_A, post="at://other")
    table.apply(through_topic(entry_of_result(copy)))
    for subject in (Subject.of("sha256", SHA_A), Subject.of("url", "https://mirror/x"),
                    Subject.of("post", "at://other")):  # fmt: skip
        verdict = table.lookup(subject)
        assert verdict is not None and verdict.risk is Risk.HIGH, subject


def test_a_match_is_decided_by_match_and_errors_and_strangers_are_not_entries() -> None:
    matched = entry_of_result(result("https://cdn/m", 0.01, "matched", "floor"))
    assert matched is not None and matched.by == "match" and matched.risk is Risk.FLOOR
    error = {"id": "e", "url": "https://cdn/e", "error": {"kind": "not_an_image"}}
    assert entry_of_result(error) is None
    assert entry_of_review({"url": "https://cdn/a", "label": "skip"}) is None
    assert read_entry(b"not json") is None and read_entry(b'{"url": 1}') is None
    assert VerdictTable().lookup(post()) is None


def test_a_record_from_before_tiers_gets_the_default_tier() -> None:
    record = result("https://cdn/a", 0.98, "flagged", "high")
    del record["brand_safety"]
    entry = entry_of_result(record)
    assert entry is not None and entry.risk is Risk.FLOOR


@pytest.mark.parametrize(
    ("item", "complaint"),
    [
        ({"post": ""}, "is empty"),
        ({"url": "x" * (MAX_SUBJECT_BYTES + 1)}, "2049 bytes, over the limit of 2048"),
        ({"url": "\ud800"}, "not valid UTF-8"),
        ({"sha256": "abc"}, "64 hexadecimal digits"),
        ({"handle": "alice"}, "unknown subject 'handle'"),
        ({"post": "a", "url": "b"}, "exactly one of post, url, sha256"),
        ({"post": 7}, "must be a string"),
        ("at://x", "exactly one of"),
    ],
)
def test_a_malformed_subject_is_a_typed_error_naming_the_fault(item: Any, complaint: str) -> None:
    with pytest.raises(InvalidSubject, match=complaint):
        subject_from(item)
