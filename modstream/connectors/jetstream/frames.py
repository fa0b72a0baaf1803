"""Jetstream frames -> image events: a pure reading, no socket and no clock.

A Jetstream frame is one JSON object: ``{"did", "time_us", "kind", "commit": {"operation",
"collection", "rkey", "cid", "record"}}``. Only commits that create (or update) an
``app.bsky.feed.post`` can carry images; every other frame (deletes, likes, identity and account
events) still moves the stream position (``time_us``) and yields nothing.

A post's images sit in its ``embed``: ``app.bsky.embed.images`` (up to four), or the ``media`` of
``app.bsky.embed.recordWithMedia``; on request also the thumbnail of an external link card
(``app.bsky.embed.external``) and of a video (``app.bsky.embed.video``). Each becomes one
:class:`~modstream.events.ImageEvent` whose ``id`` is the post's at-uri and the image's index, and
whose ``meta`` carries the post, its author, the alt text and the author's self-labels.

Dids and cids end up in a URL path, so they are checked against their syntax first: a frame
that names ``../`` as a cid is malformed, not a request for another path.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from modstream.events import ImageEvent

__all__ = ["FrameReading", "ImageLinks", "MalformedFrame", "read_frame"]

POST_COLLECTION = "app.bsky.feed.post"
_DID = re.compile(r"did:[a-z]+:[A-Za-z0-9._:-]+(?:%3A[A-Za-z0-9._-]+)*")
_CID = re.compile(r"[A-Za-z0-9]{8,128}")
_RKEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_WRITES = frozenset({"create", "update"})


class MalformedFrame(ValueError):
    """A frame that is not a Jetstream event: not JSON, or missing the fields every event has."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ImageLinks:
    """Where a blob can be fetched, and which embeds beyond images are scored."""

    image_base_url: str = "https://cdn.bsky.app"
    video_base_url: str = "https://video.bsky.app"
    external_thumbnails: bool = False
    video_thumbnails: bool = False

    def image_url(self, did: str, cid: str) -> str:
        return f"{self.image_base_url.rstrip('/')}/img/feed_fullsize/plain/{did}/{cid}@jpeg"

    def video_thumbnail_url(self, did: str, cid: str) -> str:
        quoted = urllib.parse.quote(did, safe="")
        return f"{self.video_base_url.rstrip('/')}/watch/{quoted}/{cid}/thumbnail.jpg"


@dataclass(frozen=True, slots=True)
class FrameReading:
    """What one frame holds: its stream position, its images, and images that could not be read."""

    time_us: int
    events: tuple[ImageEvent, ...] = ()
    unreadable: int = 0  # embedded blobs without a usable cid (skipped)


@dataclass(frozen=True, slots=True)
class _Found:
    url: str
    embed: str
    alt: str
    link: str | None = None


def read_frame(raw: str | bytes, links: ImageLinks, *, observed_at: float) -> FrameReading:
    """Read one frame; raise :class:`MalformedFrame` when it is not a Jetstream event at all."""
    try:
        frame = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedFrame(f"not JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise MalformedFrame("not a JSON object")
    time_us = frame.get("time_us")
    if not isinstance(time_us, int) or isinstance(time_us, bool) or time_us < 0:
        raise MalformedFrame("no time_us")
    commit = frame.get("commit")
    if frame.get("kind") != "commit" or not isinstance(commit, dict):
        return FrameReading(time_us)
    if commit.get("collection") != POST_COLLECTION or commit.get("operation") not in _WRITES:
        return FrameReading(time_us)
    did, rkey, record = frame.get("did"), commit.get("rkey"), commit.get("record")
    if not isinstance(did, str) or not _matches(_DID, did):
        raise MalformedFrame("a post commit without a valid did")
    if not _matches(_RKEY, rkey) or not isinstance(record, dict):
        raise MalformedFrame("a post commit without a valid rkey or record")
    found: list[_Found] = []
    unreadable = _collect(record.get("embed"), did, links, found)
    uri = f"at://{did}/{POST_COLLECTION}/{rkey}"
    labels = _self_labels(record)
    # The post record's cid pins a label to this version of the post (a label carries it).
    post_cid = commit.get("cid") if _matches(_CID, commit.get("cid")) else None
    events = tuple(
        ImageEvent(
            id=f"{uri}#{index}",
            url=image.url,
            source="jetstream",
            observed_at=observed_at,
            meta=_meta(
                image,
                uri=uri,
                did=did,
                time_us=time_us,
                index=index,
                labels=labels,
                post_cid=post_cid,
            ),
        )
        for index, image in enumerate(found)
    )
    return FrameReading(time_us, events, unreadable)


def _meta(
    image: _Found, *, uri: str, did: str, time_us: int, index: int, labels: list[str],
    post_cid: str | None,
) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {
        "post": uri,
        "did": did,
        "index": index,
        "embed": image.embed,
        "alt": image.alt,
        "self_labels": labels,
        "time_us": time_us,
    }
    if image.link is not None:
        meta["link"] = image.link
    if post_cid is not None:
        meta["post_cid"] = post_cid
    return meta


def _collect(embed: object, did: str, links: ImageLinks, found: list[_Found]) -> int:
    """Append the scoreable images of ``embed`` to ``found``; return how many were unreadable."""
    if not isinstance(embed, dict):
        return 0
    kind = embed.get("$type")
    if kind == "app.bsky.embed.images":
        return _images(embed.get("images"), did, links, found)
    if kind == "app.bsky.embed.recordWithMedia":
        return _collect(embed.get("media"), did, links, found)
    if kind == "app.bsky.embed.external" and links.external_thumbnails:
        external = embed.get("external")
        if not isinstance(external, dict) or "thumb" not in external:
            return 0
        cid = _blob_cid(external.get("thumb"))
        if cid is None:
            return 1
        link = external.get("uri")
        found.append(_Found(links.image_url(did, cid), "external", _text(external.get("title")),
                            link=link if isinstance(link, str) else None))  # fmt: skip
        return 0
    if kind == "app.bsky.embed.video" and links.video_thumbnails:
        cid = _blob_cid(embed.get("video"))
        if cid is None:
            return 1
        found.append(_Found(links.video_thumbnail_url(did, cid), "video", _text(embed.get("alt"))))
    return 0


def _images(images: object, did: str, links: ImageLinks, found: list[_Found]) -> int:
    if not isinstance(images, list):
        return 1
    unreadable = 0
    for item in images:
        cid = _blob_cid(item.get("image")) if isinstance(item, dict) else None
        if cid is None:
            unreadable += 1
            continue
        found.append(_Found(links.image_url(did, cid), "images", _text(item.get("alt"))))
    return unreadable


def _blob_cid(blob: object) -> str | None:
    """The cid of a blob: ``{"$type": "blob", "ref": {"$link": CID}}`` or the legacy ``{"cid"}``."""
    if not isinstance(blob, dict):
        return None
    ref = blob.get("ref")
    cid = ref.get("$link") if isinstance(ref, dict) else blob.get("cid")
    return cid if _matches(_CID, cid) else None


def _self_labels(record: Mapping[str, Any]) -> list[str]:
    labels = record.get("labels")
    if not isinstance(labels, dict):
        return []
    return list(_label_values(labels.get("values")))


def _label_values(values: object) -> Iterator[str]:
    if isinstance(values, list):
        for value in values:
            if isinstance(value, dict) and isinstance(value.get("val"), str):
                yield value["val"]


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _matches(pattern: re.Pattern[str], value: object) -> bool:
    return isinstance(value, str) and pattern.fullmatch(value) is not None
