"""The verdict topic's records: what a result or a reviewer's decision says of one image. Pure.

The verdict topic (``PREFIX.verdicts``) is compacted, keyed by what the record is about, so it
holds the newest word on each image, and a replica rebuilds its table by reading it:

``image:URL``
    the model's verdict on the image at URL (from a result record):
    ``{"url", "post"?, "sha256"?, "risk", "nsfw", "by": "model"|"match", "at"}``; ``at`` is
    the result's ``published_at`` (so a lookup's ``updated_at``, and the freshness metric).
``review:sha256:HEX`` (or ``review:url:URL`` when the record has no sha256)
    a reviewer's decision on the image (from ``images.reviewed``):
    ``{"url", "post"?, "sha256"?, "label": "nsfw"|"safe", "risk", "nsfw", "by": "reviewer",
    "at"}``. It overrides the model for that image: ``nsfw`` is at least high risk, ``safe`` is
    none. Being its own key, compaction never lets a later model verdict erase it.

A result replayed (at least once) writes the same key again: the table takes the newest, so
duplicates change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson

from modstream.digests import is_sha256_hex
from modstream.pipeline.moderate.brandsafety import BrandSafety, Risk, worst
from modstream.pipeline.moderate.decisions import Decision

__all__ = ["Entry", "entry_of_result", "entry_of_review", "read_entry"]

_DEFAULT_TIERS = BrandSafety()


@dataclass(frozen=True, kw_only=True, slots=True)
class Entry:
    """One record of the verdict topic, decoded."""

    url: str
    post: str | None
    sha256: str | None
    risk: Risk
    nsfw: float
    by: str  # model, match or reviewer
    at: float
    review: bool  # a reviewer's decision (an override), not the model's verdict

    @property
    def key(self) -> bytes:
        if not self.review:
            return b"image:" + self.url.encode()
        if self.sha256 is not None:
            return b"review:sha256:" + self.sha256.encode()
        return b"review:url:" + self.url.encode()

    def value(self) -> bytes:
        fields: dict[str, Any] = {"url": self.url}
        if self.post is not None:
            fields["post"] = self.post
        if self.sha256 is not None:
            fields["sha256"] = self.sha256
        fields.update(risk=self.risk.value, nsfw=self.nsfw, by=self.by, at=self.at)
        if self.review:
            fields["label"] = "nsfw" if self.risk is not Risk.NONE else "safe"
        return orjson.dumps(fields)


def entry_of_result(record: dict[str, Any]) -> Entry | None:
    """The model's verdict in a result record (flagged, review, safe or matched), or None for a
    record that is not one (an error, no url, no score)."""
    url, nsfw, decided = record.get("url"), record.get("nsfw"), _decision(record)
    if not isinstance(url, str) or not url or not _number(nsfw) or decided is None:
        return None
    return Entry(
        url=url, post=_post(record), sha256=_sha256(record), risk=_risk(record, decided),
        nsfw=float(nsfw), by="match" if decided is Decision.MATCHED else "model",
        at=_time(record, "published_at"), review=False,
    )  # fmt: skip


def entry_of_review(record: dict[str, Any]) -> Entry | None:
    """The override in a reviewer's decision (``images.reviewed``), or None if it is not one."""
    url, label = record.get("url"), record.get("label")
    if not isinstance(url, str) or not url or label not in ("nsfw", "safe"):
        return None
    scored = record.get("nsfw")
    nsfw = float(scored) if _number(scored) else (1.0 if label == "nsfw" else 0.0)
    if label == "safe":
        risk = Risk.NONE
    else:
        decided = _decision(record)
        risk = worst([Risk.HIGH, Risk.HIGH if decided is None else _risk(record, decided)])
    return Entry(
        url=url, post=_post(record), sha256=_sha256(record), risk=risk, nsfw=nsfw,
        by="reviewer", at=_time(record, "decided_at"), review=True,
    )  # fmt: skip


def read_entry(value: bytes) -> Entry | None:
    """A verdict topic record's value, or None if it is not one this version reads."""
    try:
        fields = orjson.loads(value)
        return Entry(
            url=fields["url"], post=fields.get("post"), sha256=fields.get("sha256"),
            risk=Risk(fields["risk"]), nsfw=float(fields["nsfw"]), by=fields["by"],
            at=float(fields["at"]), review=fields["by"] == "reviewer",
        )  # fmt: skip
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def _risk(record: dict[str, Any], decision: Decision) -> Risk:
    """The record's own tier; a record from before tiers existed gets the default one."""
    tier = record.get("brand_safety")
    if isinstance(tier, dict):
        try:
            return Risk(str(tier.get("risk")))
        except ValueError:
            pass
    nsfw = record.get("nsfw")
    return _DEFAULT_TIERS.risk(decision, float(nsfw) if _number(nsfw) else 0.0)


def _decision(record: dict[str, Any]) -> Decision | None:
    try:
        return Decision(str(record.get("decision")))
    except ValueError:
        return None


def _post(record: dict[str, Any]) -> str | None:
    meta = record.get("meta")
    post = meta.get("post") if isinstance(meta, dict) else None
    return post if isinstance(post, str) and post else None


def _sha256(record: dict[str, Any]) -> str | None:
    sha = record.get("sha256")
    return sha.lower() if is_sha256_hex(sha) else None


def _time(record: dict[str, Any], name: str) -> float:
    value = record.get(name)
    return float(value) if _number(value) else 0.0


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
