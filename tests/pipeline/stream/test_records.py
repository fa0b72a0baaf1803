"""Parsing input events and building output records."""

from __future__ import annotations

import base64

import orjson
import pytest

from modstream.errors import MalformedRecord, NotAnImage, RecordTooLarge
from modstream.events import event_id_for
from modstream.pipeline.stream.records import (
    REFUSED_BUDGET,
    Origin,
    error_record,
    parse_event,
    refused_record,
)


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


def test_a_refused_record_keeps_what_fits_and_names_what_it_dropped() -> None:
    """The result whose meta made it too large: the error record in its place keeps the
    verdict and drops the meta (the largest field) alone, naming it; the size and the limit
    travel in the error."""
    refused = {
        "id": "e1", "url": "https://example.com/a.jpg", "source": "s", "observed_at": 1.0,
        "meta": {"blob": "x" * 2_000_000}, "published_at": 2.0, "nsfw": 0.91,
        "decision": "flagged",
    }  # fmt: skip
    error = RecordTooLarge("too large", size=2_000_123, limit=1_048_576)
    record = refused_record(refused, error, topic="images.flagged", published_at=3.0)
    assert record["dropped"] == ["meta"]
    assert "meta" not in record
    assert record["decision"] == "flagged" and record["nsfw"] == 0.91 and record["id"] == "e1"
    assert record["refused_topic"] == "images.flagged"
    assert record["published_at"] == 3.0
    assert record["error"] == {
        "kind": "record_too_large", "message": "too large", "size": 2_000_123,
        "limit": 1_048_576, "retriable": False,
    }  # fmt: skip
    assert len(orjson.dumps(record)) < REFUSED_BUDGET


def test_a_refused_error_record_keeps_its_own_error_as_the_cause() -> None:
    """A malformed event of 3 MB answers with its raw bytes, too large in turn: the raw bytes
    go, the malformed_record error stays as ``cause``, and several large fields all go."""
    refused = {"published_at": 1.0, "error": {"kind": "malformed_record", "message": "m"},
               "raw": "A" * 3_000_000, "source_topic": "t", "offset": 7,
               "url": "u" * 40_000}  # fmt: skip
    error = RecordTooLarge("too large", size=3_040_000, limit=1_048_576)
    record = refused_record(refused, error, topic="images.errors", published_at=2.0)
    assert record["dropped"] == ["raw", "url"]
    assert record["cause"] == {"kind": "malformed_record", "message": "m"}
    assert record["error"]["kind"] == "record_too_large"
    assert record["offset"] == 7


def test_a_refused_record_that_fits_already_drops_nothing() -> None:
    error = RecordTooLarge("too large", size=900, limit=800)
    record = refused_record({"id": "e", "nsfw": 0.5}, error, topic="t", published_at=1.0)
    assert record["dropped"] == [] and record["id"] == "e" and record["nsfw"] == 0.5
