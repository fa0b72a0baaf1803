"""Mastodon statuses -> image events: a pure reading.

A status (the payload of an ``update`` event, or an item of a timeline page) has
``media_attachments``; each ``image`` becomes one event fetched from its ``url`` (the server's
own copy), falling back to ``preview_url`` when the server has not stored the original yet. A
``gifv`` (an MP4 animation) and a ``video`` are events of their MP4 ``url`` too, whose frames the
scorer samples (their still ``preview_url`` only while the server has no original). Audio and
unknown attachments are skipped. ``id`` names the server, the status and the attachment;
``meta`` carries the status's ``uri`` as ``post`` (what a verdict lookup names), its URL, the
``sensitive`` flag and ``spoiler_text`` (the author's content warning), to compare with the
score later.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from modstream.events import ImageEvent

__all__ = ["MalformedStatus", "images_in_status", "newer_id", "read_status", "status_id"]

_STATUS_ID = re.compile(r"[0-9]{1,30}")


class MalformedStatus(ValueError):
    """A payload that is not a status with an id."""


def read_status(payload: str | bytes) -> dict[str, Any]:
    try:
        status = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise MalformedStatus(f"not JSON: {exc}") from None
    if not isinstance(status, dict):
        raise MalformedStatus("not a JSON object")
    status_id(status)
    return status


def status_id(status: dict[str, Any]) -> str:
    value = status.get("id")
    if not isinstance(value, str) or not _STATUS_ID.fullmatch(value):
        raise MalformedStatus("a status without a numeric id")
    return value


def newer_id(a: str | None, b: str | None) -> str | None:
    """The later of two status ids (numeric strings, compared as numbers)."""
    if a is None or b is None:
        return b if a is None else a
    return a if int(a) >= int(b) else b


def images_in_status(
    status: dict[str, Any], *, server: str, observed_at: float
) -> list[ImageEvent]:
    """The scoreable attachments of ``status`` (already checked by :func:`read_status`)."""
    identifier = status_id(status)
    attachments = status.get("media_attachments")
    if not isinstance(attachments, list):
        return []
    account = status.get("account")
    meta: dict[str, Any] = {
        "post": _text(status.get("uri")) or _text(status.get("url")),  # the verdicts' subject
        "status": identifier,
        "status_url": _text(status.get("url")) or _text(status.get("uri")),
        "account": _text(account.get("acct")) if isinstance(account, dict) else "",
        "sensitive": status.get("sensitive") is True,
        "spoiler_text": _text(status.get("spoiler_text")),
    }
    events: list[ImageEvent] = []
    for attachment in attachments:
        if not isinstance(attachment, dict):
            continue
        url = _image_url(attachment)
        if url is None:
            continue
        attachment_id = _text(attachment.get("id")) or str(len(events))
        events.append(
            ImageEvent(
                id=f"mastodon:{server}:{identifier}:{attachment_id}",
                url=url,
                source="mastodon",
                observed_at=observed_at,
                meta={
                    **meta,
                    "attachment": attachment_id,
                    "type": attachment["type"],
                    "alt": _text(attachment.get("description")),
                },
            )
        )
    return events


def _image_url(attachment: dict[str, Any]) -> str | None:
    kind = attachment.get("type")
    if kind not in ("image", "gifv", "video"):
        return None
    keys = ("url", "preview_url")
    candidates = [attachment.get(key) for key in keys]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.lower().startswith(("http://", "https://")):
            return candidate
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
