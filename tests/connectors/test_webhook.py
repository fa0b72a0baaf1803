"""The upload webhook: payloads (ours, S3, MinIO), auth, HTTP errors and the ack contract.

Server tests run the real aiohttp server on loopback and speak real HTTP to it (aiohttp's client,
or a raw socket where a misbehaving client is the point). The publisher's half of the contract
(take emissions, resolve each receipt once Kafka acknowledged its events) is played by
:class:`PublisherStandIn`; the end-to-end path through the real publisher is tested elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import locations
import orjson
import pytest
from multidict import CIMultiDictProxy
from polling import until
from replicas.s3_events import (
    aws_key,
    deliver_like_minio,
    minio_key,
    minio_notification,
    s3_notification,
    s3_record,
    s3_test_event,
)

from modstream.connectors.base import Emission
from modstream.connectors.registry import SourceSpec, make_source
from modstream.connectors.webhook import SECRET_VARIABLE, WebhookOptions, WebhookSource
from modstream.connectors.webhook.auth import SIGNATURE_HEADER, is_authorized, signature_for
from modstream.connectors.webhook.payloads import BadJson, InvalidPayload, parse_body, parse_payload
from modstream.errors import ConfigError, PortInUse

SECRET = "correct horse battery staple"
BASE = "https://uploads.example.com"
BEARER = {"Authorization": f"Bearer {SECRET}"}
NOW = 1_700_000_000.0

Answer = tuple[int, dict[str, Any], CIMultiDictProxy[str]]


# --- payloads: pure -------------------------------------------------------------------------


def _parse(data: Any, base: str | None = BASE) -> tuple[list[Any], int]:
    parsed = parse_payload(data, object_base_url=base, now=NOW)
    return list(parsed.events), parsed.ignored


def test_our_events_one_or_many_with_defaults_for_what_is_left_out() -> None:
    """id defaults to the URL's hash, observed_at to now, source to webhook; extras join meta."""
    [one], ignored = _parse({"url": "https://img.example/a.jpg"})
    assert ignored == 0
    assert (one.id, one.source, one.observed_at, one.meta) == (
        "0d52505084684b7e7fd0e91848f6abb3",  # sha256 of the URL, first 32 hex digits
        "webhook",
        NOW,
        {},
    )
    many, _ = _parse(
        [
            {"url": "https://img.example/b.jpg", "id": 7, "observed_at": 12, "source": "cms"},
            {"url": "https://img.example/c.jpg", "meta": {"user": "u1"}, "album": "x"},
        ]
    )
    assert [(e.id, e.source, e.observed_at) for e in many] == [
        ("7", "cms", 12.0),
        ("6bbdc473c1640bf6e010bc2e35a8dfff", "webhook", NOW),
    ]
    assert many[1].meta == {"user": "u1", "album": "x"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"id": "x"}, r"'url' must be an absolute URL"),
        ({"url": "no-scheme.jpg"}, r"'url' must be an absolute URL"),
        ({"url": "https://h/a", "observed_at": "yesterday"}, r"'observed_at' must be unix seconds"),
        ({"url": "https://h/a", "observed_at": True}, r"'observed_at' must be unix seconds"),
        ({"url": "https://h/a", "meta": [1]}, r"'meta' must be an object"),
        ({"url": "https://h/a", "id": {"a": 1}}, r"'id' must be a string or an integer"),
        ([{"url": "https://h/a"}, "https://h/b"], r"^event 1: expected an object.*JSON str"),
        ("https://h/a", r"expected an object with a 'url', got JSON str"),
        ({"Records": {"eventName": "x"}}, r"'Records' must be a list"),
        ({"Records": [{"s3": {}}]}, r"Records\[0\] has no 'eventName'"),
        (s3_notification({"eventName": "ObjectCreated:Put", "s3": {}}), r"no 's3.bucket.name'"),
    ],
)
def test_a_payload_missing_a_field_is_refused_with_a_message_naming_it(
    data: Any, message: str
) -> None:
    """Whatever is wrong, the message says where: the request will be a 422 with it."""
    with pytest.raises(InvalidPayload, match=message):
        _parse(data)


def test_builders_encode_keys_the_way_each_store_does() -> None:
    """S3 keeps '/', MinIO (Go's QueryEscape) encodes it; both write spaces as '+'."""
    assert aws_key("photos/red flower.jpg") == "photos/red+flower.jpg"
    assert minio_key("albums/2024/été 1.jpg") == "albums%2F2024%2F%C3%A9t%C3%A9+1.jpg"


@pytest.mark.parametrize(
    ("raw_key", "key", "path"),
    [
        ("red+flower.jpg", "red flower.jpg", "red%20flower.jpg"),
        ("albums/2024/cat.png", "albums/2024/cat.png", "albums/2024/cat.png"),
        (
            "albums%2F2024%2F%C3%A9t%C3%A9+1.jpg",
            "albums/2024/été 1.jpg",
            "albums/2024/%C3%A9t%C3%A9%201.jpg",
        ),
        ("a%2Bb%3Dc%26d.jpg", "a+b=c&d.jpg", "a%2Bb%3Dc%26d.jpg"),
        ("100%25+real%3F.png", "100% real?.png", "100%25%20real%3F.png"),
        ("%E7%8C%AB/%E7%8A%AC.webp", "猫/犬.webp", "%E7%8C%AB/%E7%8A%AC.webp"),
    ],
)
def test_an_encoded_key_is_decoded_then_quoted_for_the_url_path(
    raw_key: str, key: str, path: str
) -> None:
    """'+' is a space, %2F a slash; the URL quotes the key again, keeping '/' as separators."""
    record = s3_record("photos", "ignored")
    record["s3"]["object"]["key"] = raw_key
    [event], _ = _parse(s3_notification(record))
    assert event.meta["key"] == key
    assert event.url == f"{BASE}/photos/{path}"
    assert event.id.startswith(f"s3:photos/{key}@")


def test_an_s3_record_becomes_an_event_whose_id_names_the_object_version() -> None:
    """versionId, else sequencer, else eTag: the same notification delivered twice, the same id."""
    versioned = s3_record("photos", "a/red flower.jpg", version_id="3/L4kqtJl+rmSpXd", size=99)
    [event], ignored = _parse(s3_notification(versioned))
    assert ignored == 0
    assert event.id == "s3:photos/a/red flower.jpg@3/L4kqtJl+rmSpXd"
    assert event.url == f"{BASE}/photos/a/red%20flower.jpg"
    assert (event.source, event.observed_at) == ("webhook", NOW)
    assert event.meta == {
        "bucket": "photos",
        "key": "a/red flower.jpg",
        "size": 99,
        "etag": versioned["s3"]["object"]["eTag"],
        "event_name": "ObjectCreated:Put",
        "event_time": "2024-05-01T12:00:00.000Z",
        "content_type": None,
        "event_source": "aws:s3",
    }
    unversioned = s3_record("photos", "b.jpg", sequencer="0055AED6DCD90281E5")
    assert _parse(s3_notification(unversioned))[0][0].id == "s3:photos/b.jpg@0055AED6DCD90281E5"
    del unversioned["s3"]["object"]["sequencer"]
    etag = unversioned["s3"]["object"]["eTag"]
    assert _parse(s3_notification(unversioned))[0][0].id == f"s3:photos/b.jpg@{etag}"
    again = _parse(s3_notification(versioned))[0][0]
    assert again.id == event.id


def test_a_minio_notification_carries_content_type_and_user_metadata() -> None:
    """MinIO's wrapper is read through its Records; 's3:'-prefixed names are creations too."""
    body = minio_notification(
        "uploads",
        "users/42/selfie 1.jpg",
        content_type="image/png",
        user_metadata={"X-Amz-Meta-Uid": "42"},
    )
    assert body["Key"] == "uploads/users/42/selfie 1.jpg"
    [event], _ = _parse(body, base=BASE + "/")
    assert event.url == f"{BASE}/uploads/users/42/selfie%201.jpg"
    assert event.meta["content_type"] == "image/png"
    assert event.meta["event_source"] == "minio:s3"
    assert event.meta["event_name"] == "s3:ObjectCreated:Put"
    assert event.meta["user_metadata"] == {"content-type": "image/png", "X-Amz-Meta-Uid": "42"}
    sequencer = body["Records"][0]["s3"]["object"]["sequencer"]
    assert event.id == f"s3:uploads/users/42/selfie 1.jpg@{sequencer}"


def test_only_object_creations_become_events_the_rest_are_counted_as_ignored() -> None:
    """Deletes, reads and S3's test event are ignored, not refused; creations of any kind count."""
    body = s3_notification(
        s3_record("p", "gone.jpg", event_name="ObjectRemoved:Delete"),
        s3_record("p", "new.jpg", event_name="ObjectCreated:CompleteMultipartUpload"),
        s3_record("p", "read.jpg", event_name="s3:ObjectAccessed:Get"),
        s3_record("p", "copy.jpg", event_name="s3:ObjectCreated:Copy"),
    )
    events, ignored = _parse(body)
    assert ([e.meta["key"] for e in events], ignored) == (["new.jpg", "copy.jpg"], 2)
    assert _parse(s3_test_event("p")) == ([], 1)
    deletes_only = s3_notification(s3_record("p", "x.jpg", event_name="ObjectRemoved:Delete"))
    assert _parse(deletes_only, base=None) == ([], 1)  # no URL to build, no base URL needed


@pytest.mark.parametrize(
    ("content_type", "scored"),
    [("image/jpeg", True), ("image/heic", True), ("video/mp4", True), ("image/svg+xml", True),
     ("application/octet-stream", True), ("", True), ("application/pdf", False),
     ("text/plain; charset=utf-8", False), ("audio/mpeg", False)],
)  # fmt: skip
def test_an_upload_declared_as_something_other_than_media_is_ignored(
    content_type: str, scored: bool
) -> None:
    """MinIO says what the uploader declared: a document, text or audio is not media and is
    counted as ignored; any image or video type (decoded or not: the bytes decide, and an
    unsupported one gets its error record) and an undeclared type become events."""
    events, ignored = _parse(minio_notification("p", "upload", content_type=content_type))
    assert (len(events), ignored) == ((1, 0) if scored else (0, 1))


def test_an_object_creation_without_object_base_url_is_refused_clearly() -> None:
    """Without a base URL an object has no address: the message names the flag to set, spelled
    as the flag is (not as the field in the code)."""
    with pytest.raises(
        InvalidPayload, match=r"no object base URL.*start it with --object-base-url https://"
    ):
        _parse(minio_notification("b", "k.jpg"), base=None)


def test_a_key_with_dot_segments_is_refused_rather_than_pointing_at_another_object() -> None:
    """A client would resolve 'a/../b' to another object than the one uploaded."""
    with pytest.raises(InvalidPayload, match=r"'\.\.' segment"):
        _parse(s3_notification(s3_record("p", "a/../other-bucket/x.jpg")))


def _body(body: bytes, content_type: str = "application/json") -> tuple[list[str], int]:
    parsed = parse_body(body, content_type=content_type, object_base_url=BASE, now=NOW)
    return [event.url for event in parsed.events], parsed.ignored


def test_newline_delimited_json_is_read_declared_or_detected() -> None:
    """One document a line is taken with Content-Type application/x-ndjson, or without it when the
    body is not one document but every line is; blank lines are skipped, each line may be any
    accepted shape (ours, a list, an S3 notification)."""
    ndjson = (
        b'{"url": "https://img.example/a.jpg"}\n\n'
        b'[{"url": "https://img.example/b.jpg"}]\n'
        + orjson.dumps(s3_notification(s3_record("p", "c.jpg"), s3_record(
            "p", "d.jpg", event_name="ObjectRemoved:Delete")))
        + b"\n"
    )  # fmt: skip
    expected = (["https://img.example/a.jpg", "https://img.example/b.jpg", f"{BASE}/p/c.jpg"], 1)
    assert _body(ndjson, "application/x-ndjson") == expected
    assert _body(ndjson) == expected  # detected
    one_line = b'{"url": "https://img.example/a.jpg"}\n'
    assert _body(one_line, "application/x-ndjson") == (["https://img.example/a.jpg"], 0)
    assert _body(b'{"url": "https://img.example/a.jpg"}') == (["https://img.example/a.jpg"], 0)


def test_a_bad_ndjson_line_is_refused_with_its_line_number() -> None:
    """A line that is not JSON is a BadJson naming it; a line that is not an event an
    InvalidPayload naming it; a body that is neither JSON nor NDJSON says so."""
    with pytest.raises(BadJson, match=r"^line 2 is not JSON"):
        _body(b'{"url": "https://h/a"}\n{oops\n', "application/x-ndjson")
    with pytest.raises(InvalidPayload, match=r"^line 3: 'url' must be an absolute URL"):
        _body(b'{"url": "https://h/a"}\n\n{"id": "x"}\n')
    with pytest.raises(BadJson, match=r"^the body is not JSON \(nor one JSON document a line\)"):
        _body(b'{"url": "https://h/a"}\n{oops\n')
    with pytest.raises(BadJson):
        _body(b"{not json")


# --- auth: pure -----------------------------------------------------------------------------


def test_bearer_token_or_body_signature_authorizes_and_nothing_else_does() -> None:
    """Either header proves the secret; a wrong, missing or other-body one does not."""
    key, body = SECRET.encode(), b'{"url": "https://h/a"}'

    def check(authorization: str | None = None, signature: str | None = None) -> bool:
        return is_authorized(key, body, authorization=authorization, signature=signature)

    assert check(f"Bearer {SECRET}")
    assert check(f"bearer   {SECRET} ")
    assert check(signature=signature_for(key, body))
    assert check(signature=signature_for(key, body).upper())
    assert check("Bearer wrong", signature_for(key, body))
    assert not check()
    assert not check("Bearer wrong")
    assert not check(f"Basic {SECRET}")
    assert not check(SECRET)
    assert not check(signature=signature_for(key, b"another body"))
    assert not check(signature=signature_for(b"another secret", body))
    assert not check("Bearer sécret\udcff", "sha256=é")  # any header text: refused, no error


def test_secrets_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both checks go through hmac.compare_digest, never ==."""
    compared: list[tuple[bytes, bytes]] = []
    constant_time = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    key, body = SECRET.encode(), b"{}"
    assert not is_authorized(key, body, authorization="Bearer guess", signature="sha256=00")
    assert compared == [(b"guess", key), (b"sha256=00", signature_for(key, body).encode())]


# --- the server: real HTTP on loopback ------------------------------------------------------


class PublisherStandIn:
    """The publisher's side of the contract: take each emission and resolve its receipt when
    the test says Kafka acknowledged it (or at once, with ``auto_ack``)."""

    def __init__(self, source: WebhookSource, *, auto_ack: bool = False) -> None:
        self._source = source
        self._auto_ack = auto_ack
        self._taken: asyncio.Queue[Emission] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PublisherStandIn:
        self._task = asyncio.create_task(self._take())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _take(self) -> None:
        async for emission in self._source.emissions(None):
            if self._auto_ack and emission.receipt is not None:
                emission.receipt.set_result(None)
            self._taken.put_nowait(emission)

    async def next_emission(self) -> Emission:
        async with asyncio.timeout(5):
            return await self._taken.get()


@contextlib.asynccontextmanager
async def serving(**options: Any) -> AsyncIterator[tuple[WebhookSource, aiohttp.ClientSession]]:
    settings = WebhookOptions(**{"port": 0, "object_base_url": BASE, **options})
    async with (
        WebhookSource(settings, secret=SECRET) as source,
        aiohttp.ClientSession(source.url) as http,
    ):
        yield source, http


async def post(
    http: aiohttp.ClientSession, body: Any, headers: dict[str, str] | None = None
) -> Answer:
    data = body if isinstance(body, bytes) else orjson.dumps(body)
    sent = BEARER if headers is None else headers
    async with http.post("/v1/events", data=data, headers=sent) as response:
        return response.status, await response.json(), response.headers


async def wait_until(condition: Callable[[], bool]) -> None:
    await until(condition, "the webhook's state", timeout_s=5, interval_s=0.005)


def _error_kind(answer: Answer) -> tuple[int, str]:
    return answer[0], answer[1]["error"]["kind"]


async def test_a_request_is_answered_202_only_once_its_receipt_is_resolved() -> None:
    """The caller's 202 means 'in Kafka': it waits for the publisher to resolve the receipt."""
    urls = ["https://img.example/a.jpg", "https://img.example/b.jpg"]
    async with serving() as (source, http), PublisherStandIn(source) as publisher:
        request = asyncio.create_task(post(http, [{"url": urls[0], "id": "a"}, {"url": urls[1]}]))
        emission = await publisher.next_emission()
        assert [event.url for event in emission.events] == urls
        assert emission.position is None and emission.receipt is not None
        done, _ = await asyncio.wait({request}, timeout=0.2)
        assert not done  # taken by the publisher, not yet acknowledged: no answer yet
        emission.receipt.set_result(None)
        status, body, _ = await request
        assert status == 202
        derived = "6e63e0004e02a559c323749ca96cd66a"  # sha256 of urls[1], first 32 hex digits
        assert body == {"accepted": 2, "ignored": 0, "ids": ["a", derived]}
        assert source.statistics().events == 2
        async with http.get("/healthz") as health:
            assert (health.status, await health.json()) == (200, {"status": "ok"})


async def test_a_signed_s3_notification_is_accepted_and_ignored_records_are_counted() -> None:
    """HMAC of the raw body authorizes; the answer counts both accepted and ignored records."""
    body = orjson.dumps(
        s3_notification(
            s3_record("photos", "red flower.jpg", version_id="v1"),
            s3_record("photos", "old.jpg", event_name="ObjectRemoved:Delete"),
        )
    )
    signed = {SIGNATURE_HEADER: signature_for(SECRET.encode(), body)}
    async with serving() as (source, http), PublisherStandIn(source, auto_ack=True) as publisher:
        status, answer, _ = await post(http, body, signed)
        assert status == 202
        assert answer == {"accepted": 1, "ignored": 1, "ids": ["s3:photos/red flower.jpg@v1"]}
        emission = await publisher.next_emission()
        assert emission.events[0].url == f"{BASE}/photos/red%20flower.jpg"
        only_ignored = await post(http, s3_test_event("photos"))
        assert only_ignored[:2] == (202, {"accepted": 0, "ignored": 1, "ids": []})


async def test_minio_delivers_with_its_head_probe_and_bearer_token() -> None:
    """MinIO probes with HEAD (any answer means up), then posts with 'Bearer <token>'."""
    async with serving() as (source, http), PublisherStandIn(source, auto_ack=True):
        status, answer = await deliver_like_minio(
            http, "/v1/events", minio_notification("uploads", "a b.jpg"), token=SECRET
        )
        assert (status, answer["accepted"]) == (202, 1)


async def test_a_request_without_the_secret_is_refused_401_and_queues_nothing() -> None:
    """No header, a wrong token, a signature of another body: 401 JSON, nothing emitted."""
    body = orjson.dumps({"url": "https://img.example/a.jpg"})
    async with serving() as (source, http):
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {SIGNATURE_HEADER: signature_for(SECRET.encode(), body + b" ")},
        ):
            answer = await post(http, body, headers)
            assert _error_kind(answer) == (401, "unauthorized")
            assert answer[2]["WWW-Authenticate"] == "Bearer"
        assert source.queued_events == 0
        assert source.statistics().malformed == 0


async def test_bad_json_invalid_events_and_unknown_routes_have_json_errors() -> None:
    """400 bad_json, 422 invalid_event (also an S3 event without --object-base-url), 404, 405."""
    async with serving(object_base_url=None) as (source, http):
        assert _error_kind(await post(http, b"{not json")) == (400, "bad_json")
        assert _error_kind(await post(http, {"id": "no-url"})) == (422, "invalid_event")
        status, answer, _ = await post(http, s3_notification(s3_record("p", "a.jpg")))
        assert status == 422 and "--object-base-url https://" in answer["error"]["message"]
        assert source.statistics().malformed == 3
        async with http.get("/v2/elsewhere") as missing:
            assert missing.status == 404
            assert (await missing.json())["error"]["kind"] == "not_found"
        async with http.get("/v1/events") as wrong_method:
            assert wrong_method.status == 405
            assert (await wrong_method.json())["error"]["kind"] == "method_not_allowed"
            assert wrong_method.headers["Allow"] == "POST"


async def test_an_ndjson_request_is_one_emission_answered_202_with_every_id() -> None:
    """Over HTTP, an NDJSON body (declared) is taken whole: one emission, one 202 naming each id."""
    body = (
        b'{"url": "https://img.example/a.jpg", "id": "a"}\n'
        b'{"url": "https://img.example/b.jpg", "id": "b"}\n'
    )
    headers = {**BEARER, "Content-Type": "application/x-ndjson"}
    async with serving() as (source, http), PublisherStandIn(source, auto_ack=True) as publisher:
        status, answer, _ = await post(http, body, headers)
        assert (status, answer) == (202, {"accepted": 2, "ignored": 0, "ids": ["a", "b"]})
        emission = await publisher.next_emission()
        assert [event.id for event in emission.events] == ["a", "b"]
        bad = await post(http, b'{"url": "https://h/a"}\n{oops\n', headers)
        assert _error_kind(bad) == (400, "bad_json") and "line 2" in bad[1]["error"]["message"]


SOURCES_EXAMPLES = "<!-- webhook-examples:"


def _readme_examples() -> str:
    """The webhook's shell block in docs/sources.md, without the lines that start modstream."""
    readme = (locations.REPO / "docs" / "sources.md").read_text()
    block = readme.split(SOURCES_EXAMPLES, 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    kept = [line for line in block.splitlines() if not line.startswith(("export ", "modstream "))]
    return "\n".join(kept) + "\n"


def _json_values(text: str) -> list[Any]:
    decoder, values, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        value, at = decoder.raw_decode(text, at)
        values.append(value)
        while at < len(text) and text[at].isspace():
            at += 1
    return values


async def test_the_readme_curl_examples_are_each_accepted() -> None:
    """Every curl example of docs/sources.md (our event, a list, NDJSON, a signed body, S3, MinIO),
    run by bash against a real webhook, is answered 202 with the events it documents."""
    async with serving() as (source, _http), PublisherStandIn(source, auto_ack=True):
        script = _readme_examples().replace("http://127.0.0.1:8090", source.url)
        shell = await asyncio.create_subprocess_exec(
            "bash", "-euo", "pipefail", "-c", script,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, SECRET_VARIABLE: SECRET},
        )  # fmt: skip
        async with asyncio.timeout(30):
            out, err = await shell.communicate()
    assert shell.returncode == 0, err.decode()
    answers = _json_values(out.decode())
    assert [answer.get("accepted") for answer in answers] == [1, 2, 2, 1, 1, 1], answers
    ids = [event_id for answer in answers for event_id in answer["ids"]]
    assert ids[0] == "upload-42"
    assert ids[-2:] == ["s3:photos/u/42/red flower.jpg@v1", "s3:photos/u/42/f.jpg@17C0A1B2"]
    assert source.statistics().events == 8 and source.statistics().malformed == 0


async def _raw_request(port: int, head: bytes, body_parts: list[bytes]) -> bytes:
    """Send ``head`` and some body, never finish it; read what comes back until the server hangs
    up (a server waiting for the rest of the body would never answer: the read times out)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + b"".join(body_parts))
        await writer.drain()
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_a_body_over_the_limit_is_refused_413_without_reading_it_all() -> None:
    """413 on a Content-Length over the limit, or as soon as a chunked body passes it, with the
    rest never sent; a body just over the limit is refused, one at the limit is not."""
    limit = 1024
    async with serving(max_body_bytes=limit) as (source, http):
        declared = (
            b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + SECRET.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
        )  # fmt: skip
        answer = await _raw_request(source.port, declared, [b'{"url": "https://h/'])
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b'"kind":"too_large"' in answer

        chunked = declared.replace(b"Content-Length: 50000000", b"Transfer-Encoding: chunked")
        chunk = b"200\r\n" + b" " * 0x200 + b"\r\n"  # 512 bytes a chunk, no final 0-chunk
        answer = await _raw_request(source.port, chunked, [chunk] * 4)
        assert answer.startswith(b"HTTP/1.1 413 ")

        padded = orjson.dumps({"url": "https://img.example/a.jpg", "pad": "x" * limit})
        assert _error_kind(await post(http, padded)) == (413, "too_large")
        at_limit = b'{"id": "no-url"}'.ljust(limit)
        assert _error_kind(await post(http, at_limit)) == (422, "invalid_event")
        assert source.statistics().malformed == 4


async def test_unacknowledged_events_are_answered_503_with_retry_after() -> None:
    """A receipt unresolved after ack_timeout_s: 503 unavailable, Retry-After, receipt given up."""
    async with serving(ack_timeout_s=0.2) as (source, http), PublisherStandIn(source) as publisher:
        status, answer, headers = await post(http, {"url": "https://img.example/a.jpg"})
        assert (status, answer["error"]["kind"]) == (503, "unavailable")
        assert "not acknowledged within 0.2 s" in answer["error"]["message"]
        assert headers["Retry-After"] == "1"
        emission = await publisher.next_emission()
        assert emission.receipt is not None and emission.receipt.cancelled()


async def test_events_whose_caller_was_answered_503_are_not_emitted_late() -> None:
    """Not yet taken when their caller gave up: dropped, since the caller sends them again."""
    async with serving(ack_timeout_s=0.2) as (source, http):
        assert _error_kind(await post(http, {"url": "https://img.example/late.jpg"}))[0] == 503
        async with PublisherStandIn(source, auto_ack=True) as publisher:
            status, _answer, _ = await post(http, {"url": "https://img.example/next.jpg"})
            assert status == 202
            emission = await publisher.next_emission()
            assert emission.events[0].url == "https://img.example/next.jpg"
            assert source.queued_events == 0


async def test_a_full_queue_is_answered_503_and_closing_answers_waiting_callers() -> None:
    """queue_size bounds the events waiting for the publisher; closing does not leave callers
    hanging: each gets a 503 to retry against."""
    events = [{"url": f"https://img.example/{i}.jpg"} for i in range(3)]
    async with serving(queue_size=2, ack_timeout_s=30.0) as (source, http):
        waiting = asyncio.create_task(post(http, events[:2]))
        await wait_until(lambda: source.queued_events == 2)
        status, answer, headers = await post(http, events[2])
        assert (status, answer["error"]["kind"]) == (503, "unavailable")
        assert headers["Retry-After"] == "1"
        assert "queue is full" in answer["error"]["message"]
        too_many = await post(http, events)
        assert _error_kind(too_many) == (413, "too_large")
        await source.__aexit__(None, None, None)
        assert _error_kind(await waiting) == (503, "unavailable")
        assert source.statistics().connected is False


async def test_a_port_in_use_is_a_port_in_use_error_naming_the_port_and_the_flag() -> None:
    """Binding fails the run with a typed error, no chained traceback, nothing left open."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        source = WebhookSource(WebhookOptions(port=port), secret=SECRET)
        with pytest.raises(PortInUse, match=rf"127\.0\.0\.1:{port}.*--webhook-port") as caught:
            async with source:
                pass
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
        assert source.statistics().connected is False


def test_create_reads_the_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the registry: options cast from text, the secret required (16+ characters) and
    never shown."""
    monkeypatch.setenv(SECRET_VARIABLE, SECRET)
    source = make_source(
        SourceSpec("webhook"), {"port": "0", "object-base-url": BASE, "ack_timeout_s": "2.5"}
    )
    assert isinstance(source, WebhookSource)
    assert source.options == WebhookOptions(port=0, object_base_url=BASE, ack_timeout_s=2.5)
    assert SECRET not in repr(source)
    with pytest.raises(ConfigError, match="takes no argument"):
        make_source(SourceSpec("webhook", "8091"), {})
    with pytest.raises(ConfigError, match="port must be between 0 and 65535"):
        make_source(SourceSpec("webhook"), {"port": "70000"})
    with pytest.raises(ConfigError, match="--object-base-url must be an http"):
        make_source(SourceSpec("webhook"), {"object_base_url": "s3://bucket"})
    for unset in ("", "  "):
        monkeypatch.setenv(SECRET_VARIABLE, unset)
        with pytest.raises(ConfigError, match=SECRET_VARIABLE):
            make_source(SourceSpec("webhook"), {})
    monkeypatch.setenv(SECRET_VARIABLE, "fifteen-chars!!")  # the rule of every secret: 16+
    with pytest.raises(ConfigError, match=f"{SECRET_VARIABLE}: the secret is 15 characters"):
        make_source(SourceSpec("webhook"), {})
    monkeypatch.delenv(SECRET_VARIABLE)
    with pytest.raises(ConfigError, match=SECRET_VARIABLE):
        make_source(SourceSpec("webhook"), {})
