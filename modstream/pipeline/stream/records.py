"""The records on the topics: input events in, results and errors out. Pure functions, no I/O.

``images.incoming``
    ``{"id", "url", "source", "observed_at", "meta"}``; only ``url`` is required. ``id`` defaults to
    a hash of the url, ``observed_at`` to the consume time, and unknown fields are kept in ``meta``.
``images.flagged`` / ``images.review`` / ``images.safe``
    the event's fields plus ``published_at``, ``nsfw``, ``decision``, ``policy``, ``model``,
    ``device``, ``precision`` and ``preprocessing`` (what produced the final score), ``sha256``,
    ``width``, ``height``, ``cached``, ``timings`` (milliseconds): :func:`result_fields`, the same
    fields ``modstream score`` and ``modstream serve`` give.
``images.errors``
    the event's fields plus ``published_at`` and ``error: {kind, message, retriable}``. A record
    that is not a valid event also lands here, with its raw bytes (base64), partition and offset.
    A record the broker refused (too large for its topic) is answered here too, by
    :func:`refused_record`: its fields as far as they fit, ``refused_topic``, ``dropped`` (the
    fields left out), and the refused record's own ``error`` as ``cause``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

from modstream.errors import MalformedRecord, ModstreamError, RecordRefused
from modstream.events import ImageEvent, event_id_for
from modstream.pipeline.moderate.moderator import Moderated, result_fields

_KNOWN = frozenset({"id", "url", "source", "observed_at", "meta"})

# An error record in place of a refused one keeps the refused record's fields up to this many
# bytes (JSON), far below any topic's limit, so the errors topic takes it.
REFUSED_BUDGET = 16_384


@dataclass(frozen=True, kw_only=True, slots=True)
class Origin:
    """Where a consumed record came from, for error records about unreadable input."""

    topic: str
    partition: int
    offset: int
    raw: bytes | None


def parse_event(raw: bytes | None, *, now: float) -> ImageEvent:
    """Validate one ``images.incoming`` value; raise :class:`MalformedRecord` when it is not one."""
    if raw is None:
        raise MalformedRecord("the record has no value (a tombstone)")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedRecord(f"the record is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MalformedRecord(f"the record is JSON {type(data).__name__}, not an object")
    url = data.get("url")
    if not isinstance(url, str) or not url:
        raise MalformedRecord("the record has no 'url' string")
    meta = data.get("meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta.update({key: value for key, value in data.items() if key not in _KNOWN})
    observed_at = data.get("observed_at")
    if isinstance(observed_at, bool) or not isinstance(observed_at, int | float):
        observed_at = now
    event_id = data.get("id")
    source = data.get("source")
    return ImageEvent(
        id=str(event_id) if event_id not in (None, "") else event_id_for(url),
        url=url,
        source=str(source) if source is not None else "unknown",
        observed_at=float(observed_at),
        meta=meta,
    )


def read_object(raw: bytes | None) -> dict[str, Any] | None:
    """A consumed record's value as a JSON object, or None when it is not one (what a reader of
    the result and decision topics skips and counts)."""
    try:
        record = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def result_record(
    event: ImageEvent, moderated: Moderated, *, published_at: float
) -> dict[str, Any]:
    return {**event.fields(), "published_at": published_at, **result_fields(moderated)}


def error_record(
    error: ModstreamError,
    *,
    published_at: float,
    event: ImageEvent | None = None,
    origin: Origin | None = None,
) -> dict[str, Any]:
    record: dict[str, Any] = event.fields() if event is not None else {}
    record["published_at"] = published_at
    record["error"] = {**error.to_dict(), "retriable": error.retriable}
    if event is None and origin is not None:
        record["source_topic"] = origin.topic
        record["partition"] = origin.partition
        record["offset"] = origin.offset
        record["raw"] = base64.b64encode(origin.raw).decode() if origin.raw is not None else None
    return record


def refused_record(
    record: dict[str, Any],
    error: RecordRefused,
    *,
    topic: str,
    published_at: float,
    budget: int = REFUSED_BUDGET,
) -> dict[str, Any]:
    """The error record in place of ``record``, which the broker refused for ``topic``: its
    fields, the largest left out first until the rest fit in ``budget`` bytes, named in
    ``dropped``."""
    kept = {("cause" if name == "error" else name): value for name, value in record.items()}
    sizes = {name: len(orjson.dumps(value)) + len(name) for name, value in kept.items()}
    total = sum(sizes.values())
    dropped: list[str] = []
    for name in sorted(sizes, key=lambda field: (-sizes[field], field)):
        if total <= budget:
            break
        del kept[name]
        total -= sizes[name]
        dropped.append(name)
    return {
        **kept,
        "published_at": published_at,
        "refused_topic": topic,
        "dropped": sorted(dropped),
        "error": {**error.to_dict(), "retriable": error.retriable},
    }
