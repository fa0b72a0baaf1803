"""What each decision about a Bluesky post adds to the label log. Pure: no Kafka, no clock.

The book knows, for every (post, value), whether the log holds that label in force or negated.
From a result record (``images.flagged`` and the other result topics) it returns the automatic
label the policy gives, once per post and value however many of the post's images earn it; from
a reviewer's decision (``images.reviewed``), ``nsfw`` gives the policy's review value and
``safe`` negates every value in force on the post. A label a reviewer negated is not put back by
an automatic decision about another image of the same post: a person's word outranks the model.

Records that are not about a Bluesky post (no ``meta.post`` at:// URI: uploads, Mastodon) earn
nothing. The book is rebuilt from the log at start (:meth:`LabelBook.replay`), so a restart
publishes no label twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modstream.labeler.labels import Label
from modstream.labeler.policy import LabelPolicy

__all__ = ["LabelBook", "Pending", "post_of"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Pending:
    """A label to sign and store: everything but the time and the signature."""

    uri: str
    val: str
    cid: str | None = None
    neg: bool = False


def post_of(record: dict[str, Any]) -> tuple[str, str | None] | None:
    """(at:// URI, record cid) of the post a record is about, or None."""
    meta = record.get("meta")
    if not isinstance(meta, dict):
        return None
    uri = meta.get("post")
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    cid = meta.get("post_cid")
    return uri, cid if isinstance(cid, str) and cid else None


class LabelBook:
    def __init__(self, policy: LabelPolicy) -> None:
        self.policy = policy
        self._in_force: dict[tuple[str, str], bool] = {}  # (uri, val) -> True: label, False: neg

    def replay(self, label: Label) -> None:
        """A label read back from the log at start."""
        self._in_force[(label.uri, label.val)] = not label.neg

    def in_force(self, uri: str) -> list[str]:
        return sorted(val for (post, val), active in self._in_force.items()
                      if post == uri and active)  # fmt: skip

    def on_result(self, record: dict[str, Any]) -> list[Pending]:
        post = post_of(record)
        decision, nsfw = record.get("decision"), record.get("nsfw")
        if post is None or not isinstance(decision, str) or not isinstance(nsfw, int | float):
            return []
        value = self.policy.automatic(decision, float(nsfw))
        if value is None:
            return []
        return self._label(post, value)

    def on_review(self, record: dict[str, Any]) -> list[Pending]:
        post = post_of(record)
        if post is None:
            return []
        verdict = record.get("label")
        if verdict == "nsfw":
            return self._label(post, self.policy.review_value, by_person=True)
        if verdict == "safe":
            uri, cid = post
            negations = [Pending(uri=uri, val=val, cid=cid, neg=True) for val in self.in_force(uri)]
            for pending in negations:
                self._in_force[(uri, pending.val)] = False
            return negations
        return []

    def _label(
        self, post: tuple[str, str | None], value: str, *, by_person: bool = False
    ) -> list[Pending]:
        uri, cid = post
        state = self._in_force.get((uri, value))
        if state is True or (state is False and not by_person):
            return []  # in force already, or negated by a person
        self._in_force[(uri, value)] = True
        return [Pending(uri=uri, val=value, cid=cid)]
