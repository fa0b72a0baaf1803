"""The newest verdict per subject, in memory, as the verdict topic's entries build it. Pure.

    table.apply(entry)          an image's verdict (model, match) or a reviewer's override
    table.lookup(subject)       -> Verdict | None (never seen)

An image is known by its URL and by its bytes' sha256; a post by the images whose records named
it (``meta.post``). A post's verdict is the worst of its images' (the highest risk; among equals
the highest score), each image's part being its newest verdict; a reviewer's decision on an
image (by sha256, else by URL) overrides the model's.

A million posts of two images is a table of millions of entries, so each verdict is packed in
one int (risk, who decided, the score to 1e-6, the time to the millisecond and, for an image,
its sha256): a dict of str to int is not tracked by the garbage collector, and costs about a
third of a small object per entry. ``docs/benchmarks.md`` (Verdicts) has the measured footprint.
"""

from __future__ import annotations

from dataclasses import dataclass

from modstream.pipeline.moderate.brandsafety import Risk
from modstream.verdicts.entries import Entry
from modstream.verdicts.subjects import Subject, SubjectKind

__all__ = ["TableStatistics", "Verdict", "VerdictTable"]

_RISKS = list(Risk)  # by rank
_DECIDERS = ("model", "match", "reviewer")
_NSFW_SCALE = 1_000_000
# bits: risk 0-2, decided_by 3-4, nsfw 5-24, time in ms 25-68, sha256 present 69, sha256 70-325
_BY_SHIFT, _NSFW_SHIFT, _AT_SHIFT, _SHA_SHIFT = 3, 5, 25, 69
_AT_MASK = (1 << 44) - 1


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the table knows of a subject."""

    risk: Risk
    nsfw: float
    decided_by: str
    updated_at: float
    images: int


@dataclass(frozen=True, slots=True)
class TableStatistics:
    images: int
    posts: int
    hashes: int
    overrides: int
    applied: int


def _pack(entry: Entry, with_sha: bool) -> int:
    packed = (
        entry.risk.rank
        | _DECIDERS.index(entry.by) << _BY_SHIFT
        | round(min(max(entry.nsfw, 0.0), 1.0) * _NSFW_SCALE) << _NSFW_SHIFT
        | (round(entry.at * 1000) & _AT_MASK) << _AT_SHIFT
    )
    if with_sha and entry.sha256 is not None:
        packed |= (1 | int(entry.sha256, 16) << 1) << _SHA_SHIFT
    return packed


def _risk(packed: int) -> int:
    return packed & 0b111


def _nsfw(packed: int) -> int:
    return (packed >> _NSFW_SHIFT) & 0xFFFFF


def _at(packed: int) -> int:
    return (packed >> _AT_SHIFT) & _AT_MASK


def _sha(packed: int) -> bytes | None:
    high = packed >> _SHA_SHIFT
    return (high >> 1).to_bytes(32, "big") if high & 1 else None


def _worse(a: int, b: int) -> bool:
    """Is verdict ``a`` worse than ``b``: a higher risk, or the same and a higher score."""
    return (_risk(a), _nsfw(a)) > (_risk(b), _nsfw(b))


class VerdictTable:
    def __init__(self) -> None:
        self._urls: dict[str, int] = {}  # the model's verdict (and sha256) per image URL
        self._shas: dict[bytes, int] = {}  # the newest model verdict per image content
        self._review_shas: dict[bytes, int] = {}  # reviewers' overrides by content
        self._review_urls: dict[str, int] = {}  # ... and by URL, for records without a sha256
        self._posts: dict[str, str | tuple[str, ...]] = {}  # a post's image URLs
        self.applied = 0

    def apply(self, entry: Entry) -> None:
        """Take one entry of the verdict topic; a newer one for the same key replaces it."""
        self.applied += 1
        url = entry.url
        sha = None if entry.sha256 is None else bytes.fromhex(entry.sha256)
        if entry.review:
            packed = _pack(entry, with_sha=False)
            if sha is not None:
                self._review_shas[sha] = packed
            else:
                self._review_urls[url] = packed
        else:
            known = self._urls.get(url)
            if known is not None and _at(known) > _at(_pack(entry, with_sha=False)):
                return  # an older verdict than the one held (a replay of an earlier result)
            self._urls[url] = _pack(entry, with_sha=True)
            if sha is not None:
                held = self._shas.get(sha)
                packed = _pack(entry, with_sha=False)
                if held is None or _at(held) <= _at(packed):
                    self._shas[sha] = packed
        if entry.post is not None:
            self._join(entry.post, url)

    def _join(self, post: str, url: str) -> None:
        images = self._posts.get(post)
        if images is None:
            self._posts[post] = url
        elif isinstance(images, str):
            if images != url:
                self._posts[post] = (images, url)
        elif url not in images:
            self._posts[post] = (*images, url)

    def lookup(self, subject: Subject) -> Verdict | None:
        if subject.kind is SubjectKind.URL:
            packed = self._image(subject.value)
            return None if packed is None else _verdict(packed, 1)
        if subject.kind is SubjectKind.SHA256:
            sha = bytes.fromhex(subject.value)
            packed = self._review_shas.get(sha, self._shas.get(sha))
            return None if packed is None else _verdict(packed, 1)
        images = self._posts.get(subject.value)
        if images is None:
            return None
        urls = (images,) if isinstance(images, str) else images
        worst: int | None = None
        newest = 0
        for url in urls:
            packed = self._image(url)
            if packed is None:
                continue
            newest = max(newest, _at(packed))
            if worst is None or _worse(packed, worst):
                worst = packed
        if worst is None:
            return None
        verdict = _verdict(worst, len(urls))
        return Verdict(verdict.risk, verdict.nsfw, verdict.decided_by, newest / 1000, len(urls))

    def _image(self, url: str) -> int | None:
        """An image's verdict: a reviewer's override if there is one, else the model's."""
        packed = self._urls.get(url)
        if packed is not None:
            sha = _sha(packed)
            if sha is not None and (override := self._review_shas.get(sha)) is not None:
                return override
        return self._review_urls.get(url, packed)

    def statistics(self) -> TableStatistics:
        return TableStatistics(
            images=len(self._urls), posts=len(self._posts), hashes=len(self._shas),
            overrides=len(self._review_shas) + len(self._review_urls), applied=self.applied,
        )  # fmt: skip


def _verdict(packed: int, images: int) -> Verdict:
    return Verdict(
        risk=_RISKS[_risk(packed)],
        nsfw=_nsfw(packed) / _NSFW_SCALE,
        decided_by=_DECIDERS[(packed >> _BY_SHIFT) & 0b11],
        updated_at=_at(packed) / 1000,
        images=images,
    )
