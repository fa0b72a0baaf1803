"""Upload notifications -> image events: the webhook's pure half (no HTTP, no clock).

Three shapes arrive on ``POST /v1/events``, as one JSON document or as newline-delimited JSON
(one document a line: ``Content-Type: application/x-ndjson``, or detected when the body is not
one document but each of its lines is):

- ours: one event ``{"url", "id"?, "observed_at"?, "meta"?, "source"?}`` or a list of them;
- an S3 bucket notification ``{"Records": [...]}`` (``eventSource: aws:s3``);
- MinIO's webhook body: the same records wrapped as ``{"EventName", "Key", "Records"}``
  (``eventSource: minio:s3``, event names prefixed with ``s3:``, plus ``contentType`` and
  ``userMetadata`` on the object).

Only object-created records become events; deletes, reads and S3's ``s3:TestEvent`` are counted
as ignored, and so is an object whose declared ``contentType`` says it is not media at all (a
document, text, audio: :func:`modstream.media.declared_media`); an image or video type, even
one modstream does not decode, and an undeclared or octet-stream type are scored, the bytes
deciding. An object's URL is ``{object_base_url}/{bucket}/{key}`` (path style). The key arrives
form-encoded (``red flower.jpg`` as ``red+flower.jpg``; MinIO encodes ``/`` as ``%2F`` too), so it
is decoded, then quoted again for the path, keeping ``/``. The id names the object version
(``s3:{bucket}/{key}@{versionId | sequencer | eTag}``): a notification delivered twice yields the
same id. ``observed_at`` is when the webhook received it (``eventTime`` stays in ``meta``).

Anything else raises :class:`InvalidPayload` (the server's 422), a body that is not JSON
:class:`BadJson` (400): a request is taken whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

import orjson

from modstream.events import ImageEvent, event_id_for
from modstream.media import declared_media

__all__ = [
    "NDJSON_TYPES", "BadJson", "InvalidPayload", "ParsedPayload", "object_url", "parse_body",
    "parse_payload",
]  # fmt: skip

_OUR_FIELDS = frozenset({"url", "id", "observed_at", "meta", "source"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})


class BadJson(ValueError):
    """The body is neither a JSON document nor newline-delimited JSON documents."""


class InvalidPayload(ValueError):
    """The JSON is neither upload events nor an object notification, or misses a field."""


@dataclass(frozen=True, slots=True)
class ParsedPayload:
    events: tuple[ImageEvent, ...]
    ignored: int  # records that are not object creations


def parse_payload(
    data: Any, *, object_base_url: str | None, now: float, source: str = "webhook"
) -> ParsedPayload:
    """The image events one request carries; raises :class:`InvalidPayload`."""
    if isinstance(data, dict) and "Records" in data:
        return _notification(data["Records"], object_base_url, now, source)
    if isinstance(data, dict) and data.get("Event") == "s3:TestEvent":
        return ParsedPayload((), ignored=1)  # S3 sends it once when notifications are set up
    if isinstance(data, list):
        events = [_our_event(item, f"event {i}: ", now, source) for i, item in enumerate(data)]
        return ParsedPayload(tuple(events), ignored=0)
    return ParsedPayload((_our_event(data, "", now, source),), ignored=0)


def parse_body(
    body: bytes, *, content_type: str, object_base_url: str | None, now: float,
    source: str = "webhook",
) -> ParsedPayload:  # fmt: skip
    """The image events of a request body: one JSON document, or one a line (NDJSON, declared by
    ``content_type`` or detected); raises :class:`BadJson` or :class:`InvalidPayload`."""
    if content_type.lower() not in NDJSON_TYPES:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            lines = _lines(body)
            if len(lines) < 2 or not all(_is_json(line) for _, line in lines):
                raise BadJson(
                    f"the body is not JSON (nor one JSON document a line): {exc}"
                ) from None
        else:
            return parse_payload(data, object_base_url=object_base_url, now=now, source=source)
    events: list[ImageEvent] = []
    ignored = 0
    for number, line in _lines(body):
        try:
            data = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise BadJson(f"line {number} is not JSON: {exc}") from None
        try:
            parsed = parse_payload(data, object_base_url=object_base_url, now=now, source=source)
        except InvalidPayload as exc:
            raise InvalidPayload(f"line {number}: {exc}") from None
        events += parsed.events
        ignored += parsed.ignored
    return ParsedPayload(tuple(events), ignored=ignored)


def _lines(body: bytes) -> list[tuple[int, bytes]]:
    """The non-blank lines of a body, numbered from 1."""
    return [(n, line) for n, line in enumerate(body.splitlines(), start=1) if line.strip()]


def _is_json(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def object_url(base: str, bucket: str, key: str) -> str:
    """The path-style URL of an object, from its decoded key."""
    segments = key.split("/")
    if "." in segments or ".." in segments:
        # A client would resolve them and fetch another object than the one uploaded.
        raise InvalidPayload(f"object key {key!r} has a '.' or '..' segment; it has no URL")
    return f"{base.rstrip('/')}/{quote(bucket, safe='')}/{quote(key, safe='/')}"


def _our_event(item: Any, where: str, now: float, default_source: str) -> ImageEvent:
    if not isinstance(item, dict):
        raise InvalidPayload(f"{where}expected an object with a 'url', got {_kind(item)}")
    url = item.get("url")
    if not isinstance(url, str) or not urlsplit(url.strip()).scheme:
        raise InvalidPayload(f"{where}'url' must be an absolute URL string (https://...)")
    event_id = item.get("id")
    if event_id is not None and (isinstance(event_id, bool) or not isinstance(event_id, str | int)):
        raise InvalidPayload(f"{where}'id' must be a string or an integer")
    observed_at = item.get("observed_at", now)
    if isinstance(observed_at, bool) or not isinstance(observed_at, int | float):
        raise InvalidPayload(f"{where}'observed_at' must be unix seconds (a number)")
    meta = item.get("meta") or {}
    if not isinstance(meta, dict):
        raise InvalidPayload(f"{where}'meta' must be an object")
    source = item.get("source") or default_source
    if not isinstance(source, str):
        raise InvalidPayload(f"{where}'source' must be a string")
    extra = {key: value for key, value in item.items() if key not in _OUR_FIELDS}
    return ImageEvent(
        id=str(event_id) if event_id not in (None, "") else event_id_for(url.strip()),
        url=url.strip(),
        source=source,
        observed_at=float(observed_at),
        meta={**meta, **extra},
    )


def _notification(records: Any, base: str | None, now: float, source: str) -> ParsedPayload:
    if not isinstance(records, list):
        raise InvalidPayload("'Records' must be a list of S3 event records")
    events: list[ImageEvent] = []
    ignored = 0
    for index, record in enumerate(records):
        where = f"Records[{index}]"
        if not isinstance(record, dict):
            raise InvalidPayload(f"{where} must be an object, got {_kind(record)}")
        name = record.get("eventName")
        if not isinstance(name, str) or not name:
            raise InvalidPayload(f"{where} has no 'eventName'")
        if not name.removeprefix("s3:").startswith("ObjectCreated:") or not _media(record):
            ignored += 1
            continue
        if not base:
            raise InvalidPayload(
                "an S3/MinIO object notification arrived, but the webhook has no object base URL "
                "to build image URLs with: start it with --object-base-url https://<storage>"
            )
        events.append(_object_event(record, where, name, base, now, source))
    return ParsedPayload(tuple(events), ignored=ignored)


def _media(record: dict[str, Any]) -> bool:
    """Whether the object may be media, by the type its uploader declared (if any)."""
    s3 = record.get("s3")
    obj = s3.get("object") if isinstance(s3, dict) else None
    declared = obj.get("contentType") if isinstance(obj, dict) else None
    return declared_media(declared if isinstance(declared, str) else None)


def _object_event(
    record: dict[str, Any], where: str, name: str, base: str, now: float, source: str
) -> ImageEvent:
    s3 = record.get("s3")
    bucket_info = s3.get("bucket") if isinstance(s3, dict) else None
    obj = s3.get("object") if isinstance(s3, dict) else None
    bucket = bucket_info.get("name") if isinstance(bucket_info, dict) else None
    raw_key = obj.get("key") if isinstance(obj, dict) else None
    if not isinstance(bucket, str) or not bucket:
        raise InvalidPayload(f"{where} has no 's3.bucket.name'")
    if not isinstance(obj, dict) or not isinstance(raw_key, str) or not raw_key:
        raise InvalidPayload(f"{where} has no 's3.object.key'")
    key = unquote_plus(raw_key)
    version = _first_text(obj, "versionId", "sequencer", "eTag")
    meta: dict[str, Any] = {
        "bucket": bucket,
        "key": key,
        "size": obj.get("size"),
        "etag": obj.get("eTag"),
        "event_name": name,
        "event_time": record.get("eventTime"),
        "content_type": obj.get("contentType"),
        "event_source": record.get("eventSource"),
    }
    if obj.get("userMetadata"):
        meta["user_metadata"] = obj["userMetadata"]
    return ImageEvent(
        id=f"s3:{bucket}/{key}" + (f"@{version}" if version else ""),
        url=object_url(base, bucket, key),
        source=source,
        observed_at=now,
        meta=meta,
    )


def _first_text(obj: dict[str, Any], *fields: str) -> str | None:
    for name in fields:
        value = obj.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _kind(value: Any) -> str:
    return "null" if value is None else f"JSON {type(value).__name__}"
