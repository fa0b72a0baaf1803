"""The review queue's rules (order, leases, decisions, replays, revocations) and the reviewers
file, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest

from modstream.errors import AlreadyDecided, ConfigError, Unauthorized, UnknownItem
from modstream.review.queue import ReviewQueue
from modstream.review.reviewers import Reviewers, read_reviewers


def _queue(*ages: float) -> ReviewQueue[str]:
    queue: ReviewQueue[str] = ReviewQueue(lease_s=60)
    for n, age in enumerate(ages):
        queue.add(f"i{n}", {"observed_at": 1000 - age}, "p0", n)
    return queue


def test_oldest_first_and_a_lease_keeps_an_item_from_others_until_it_lapses() -> None:
    """Oldest first; a lease keeps an item from others until it lapses; asking renews it."""
    queue = _queue(5, 30, 10)
    assert queue.statistics(now=1000).oldest_age_s == 30
    assert [item.id for item in queue.lease("ann", 2, now=0)] == ["i1", "i2"]
    assert [item.id for item in queue.lease("bo", 5, now=10)] == ["i0"]
    assert [item.id for item in queue.lease("ann", 5, now=20)] == ["i1", "i2"]  # still hers
    # Asking again renewed her lease (until 80); once it lapses, bo gets them too.
    assert [item.id for item in queue.lease("bo", 5, now=79)] == ["i0"]
    assert [item.id for item in queue.lease("bo", 5, now=81)] == ["i1", "i2", "i0"]


def test_records_without_observed_at_come_last_in_arrival_order() -> None:
    """A record without a usable observed_at sorts after dated ones, in arrival order."""
    queue: ReviewQueue[str] = ReviewQueue()
    queue.add("late", {}, "p", 0)
    queue.add("dated", {"observed_at": 5.0}, "p", 1)
    queue.add("later", {"observed_at": "yesterday"}, "p", 2)
    assert [item.id for item in queue.lease("r", 5, now=0)] == ["dated", "late", "later"]


def test_a_decision_is_taken_once_and_finishes_every_copy() -> None:
    """One decision per item: a concurrent or later one is refused, and every consumed copy's offset
    is finished with it."""
    queue = _queue(1, 2)
    queue.add("i0", {"observed_at": 999}, "p1", 7)  # the same item replayed elsewhere
    assert len(queue) == 2
    queue.begin_decision("i0")
    with pytest.raises(AlreadyDecided, match="being decided"):
        queue.begin_decision("i0")
    assert queue.finish_decision("i0") == [("p0", 0), ("p1", 7)]
    with pytest.raises(AlreadyDecided, match="decided already"):
        queue.begin_decision("i0")
    with pytest.raises(UnknownItem):
        queue.begin_decision("never")
    assert not queue.add("i0", {}, "p0", 9)  # a replay of a decided item is not queued again
    statistics = queue.statistics(now=0)
    assert (statistics.pending, statistics.replays_dropped) == (1, 1)
    assert [item.id for item in queue.lease("r", 5, now=0)] == ["i1"]


def test_an_abandoned_decision_waits_again_and_revoked_partitions_are_dropped() -> None:
    """A decision that could not be stored puts the item back; items of revoked partitions leave the
    queue."""
    queue = _queue(1, 2, 3)
    queue.begin_decision("i1")
    assert [item.id for item in queue.lease("r", 5, now=0)] == ["i2", "i0"]
    queue.abandon_decision("i1")
    assert "i1" in [item.id for item in queue.lease("r", 5, now=0)]
    queue.add("other", {}, "p9", 0)
    assert queue.forget(["p0"]) == 3
    assert [item.id for item in queue.lease("r", 5, now=0)] == ["other"]


def test_remembered_decisions_are_bounded_and_refuse_replays() -> None:
    """Decided ids read back at start refuse their replays, within a bounded memory."""
    queue: ReviewQueue[str] = ReviewQueue(remember_decided=2)
    queue.remember(["a", "b", "c"])
    assert queue.add("a", {}, "p", 0)  # forgotten: the oldest of three, with room for two
    assert not queue.add("b", {}, "p", 1) and not queue.add("c", {}, "p", 2)


def test_reviewers_are_identified_by_bearer_token_only(tmp_path: Path) -> None:
    """Only 'Bearer <token>' of a listed reviewer names one; anything else is Unauthorized."""
    path = tmp_path / "reviewers"
    path.write_text("# moderators\nann: ann-token-0123456789\nbo:bo-token-0123456789ab\n")
    reviewers = read_reviewers(path)
    assert len(reviewers) == 2
    assert reviewers.identify("Bearer ann-token-0123456789") == "ann"
    assert reviewers.identify("bearer   bo-token-0123456789ab") == "bo"
    for header in (None, "", "Bearer", "Bearer nope", "Basic ann-token-0123456789",
                   "ann-token-0123456789"):  # fmt: skip
        with pytest.raises(Unauthorized):
            reviewers.identify(header)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ann\n", "expected name:token"),
        ("ann:short\n", "shorter than 16"),
        ("a:same-token-0123456789\nb:same-token-0123456789\n", "used twice"),
        ("# nobody\n", "no reviewers"),
    ],
)
def test_a_bad_reviewers_file_is_refused(tmp_path: Path, text: str, message: str) -> None:
    """A malformed line, a short or repeated token, or no reviewer is a configuration error."""
    path = tmp_path / "reviewers"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_reviewers(path)
    with pytest.raises(ConfigError):
        Reviewers({})
