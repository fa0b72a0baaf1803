"""Parsing input events and building output records."""

from __future__ import annotations

import base64

import orjson
import pytest

from modstream.errors import MalformedRecord, NotAnImage
from modstream.events import event_id_for
from modstream.pipeline.stream.records import Origin, error_record, parse_event


def test_only_url_is_required() -> None:
    """A bare url gets an id from its hash, the consume time, and an unknown source."""
    event = parse_event(b'{"url": "https://example.com/a.jpg"}', now=123.5)
    assert event.id == "276a1ac00ba4f0ea47eeeafca24284f4"
    assert event.observed_at == 123.5
    assert event.source == "unknown"
    assert event.meta == {}


def test_the_default_event_id_is_the_first_32_hex_digits_of_the_urls_sha256() -> None:
    """Replays deduplicate on this id, so it must not drift: known answers for fixed URLs
    (``printf %s URL | sha256sum | cut -c1-32``), the URL taken exactly as written."""
    assert event_id_for("https://example.com/a.jpg") == "276a1ac00ba4f0ea47eeeafca24284f4"
    assert event_id_for("https://example.com/b.jpg") == "c7756891cc67449f8799d70f80b461c8"
    assert event_id_for("HTTP://Example.com/a.jpg") == "22f7f04c4afe33073c78a8480f933ded"


def test_unknown_fields_are_kept_in_meta() -> None:
    """Fields the schema does not know survive, merged into meta."""
    raw = orjson.dumps(
        {"id": "x1", "url": "https://e.com/a.png", "source": "s", "observed_at": 9,
         "meta": {"a": 1}, "author": "did:plc:123"}
    )  # fmt: skip
    event = parse_event(raw, now=0.0)
    assert (event.id, event.source, event.observed_at) == ("x1", "s", 9.0)
    assert event.meta == {"a": 1, "author": "did:plc:123"}


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'{"id": "no-url"}', b'{"url": ""}', b'{"url": 5}', None],
)
def test_malformed_records_raise(raw: bytes | None) -> None:
    """Anything that is not a JSON object with a url string is a MalformedRecord."""
    with pytest.raises(MalformedRecord) as caught:
        parse_event(raw, now=0.0)
    assert caught.value.kind == "malformed_record"


def test_error_record_for_unreadable_input_carries_raw_bytes_and_position() -> None:
    """An error about a record that never parsed keeps its bytes (base64), partition and offset."""
    origin = Origin(topic="images.incoming", partition=2, offset=41, raw=b"\x00garbage")
    record = error_record(MalformedRecord("nope"), published_at=5.0, origin=origin)
    assert record["error"] == {"kind": "malformed_record", "message": "nope", "retriable": False}
    assert base64.b64decode(record["raw"]) == b"\x00garbage"
    assert (record["partition"], record["offset"]) == (2, 41)


def test_error_record_for_an_event_keeps_its_fields() -> None:
    """An error about a valid event repeats the event so consumers can match it by id."""
    event = parse_event(b'{"id": "e", "url": "http://h/x"}', now=1.0)
    record = error_record(NotAnImage("html"), published_at=2.0, event=event)
    assert record["id"] == "e" and record["url"] == "http://h/x"
    assert record["error"]["kind"] == "not_an_image"
    assert "raw" not in record
