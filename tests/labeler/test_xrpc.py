"""The labeler's XRPC server on a loopback port, read by the atproto client library and by raw
WebSocket and HTTP clients that decode the wire format themselves."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import libipld
import pytest
from atproto import AsyncFirehoseSubscribeLabelsClient, parse_subscribe_labels_message
from atproto_crypto.verify import verify_signature
from atproto_subscription.exceptions import SubscriptionError
from multidict import MultiDict
from polling import until

from modstream.errors import BadRequest
from modstream.labeler.keys import SigningKey
from modstream.labeler.labels import Label
from modstream.labeler.log import LabelLog
from modstream.labeler.metrics import LabelerMetrics
from modstream.labeler.xrpc import (
    Follow,
    LabelQuery,
    Refuse,
    build_app,
    parse_label_query,
    subscription_plan,
)
from modstream.web.site import bound_site

pytestmark = pytest.mark.timeout(10)

KEY = SigningKey.generate()
SRC = "did:plc:modstreamlabeler"
OTHER_SRC = "did:plc:otherlabeler"
SUBSCRIBE = "/xrpc/com.atproto.label.subscribeLabels"
QUERY = "/xrpc/com.atproto.label.queryLabels"
SIGNED_FIELDS = ("ver", "src", "uri", "cid", "val", "neg", "cts", "exp")


def _post(n: int, author: str = "alice") -> str:
    return f"at://did:plc:{author}/app.bsky.feed.post/3k{n:04d}"


def _label(n: int, *, author: str = "alice", src: str = SRC, **fields: Any) -> Label:
    cts = f"2026-12-02T03:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    return Label(src=src, uri=_post(n, author), val="porn", cts=cts, **fields).signed(KEY)


def _filled(count: int) -> LabelLog:
    log = LabelLog()
    for seq in range(1, count + 1):
        log.append(seq, _label(seq))
    return log


@contextlib.asynccontextmanager
async def _serving(log: LabelLog, metrics: LabelerMetrics, **options: float) -> AsyncIterator[str]:
    """The app on a loopback port for as long as the block runs; yields its base URL."""
    async with bound_site(build_app(log, metrics, **options), "127.0.0.1", 0, port_flag="-") as p:
        yield f"127.0.0.1:{p}"


def _decode_frame(data: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    header, body = libipld.decode_dag_cbor_multi(data)
    return header, body


def _verifies(fields: dict[str, Any], sig: bytes) -> bool:
    """The signature checked as any atproto app would: over our own DAG-CBOR encoding of the
    received fields without sig (not the Label methods that made it)."""
    unsigned = {name: fields[name] for name in SIGNED_FIELDS if fields.get(name) is not None}
    return bool(verify_signature(KEY.did_key, bytes(libipld.encode_dag_cbor(unsigned)), sig))


def _subscribers(metrics: LabelerMetrics) -> float | None:
    return metrics.registry.get_sample_value("modstream_label_subscribers")


def _queries(metrics: LabelerMetrics, outcome: str) -> float | None:
    return metrics.registry.get_sample_value("modstream_label_queries_total", {"outcome": outcome})


async def _eventually(condition: Callable[[], bool], timeout_s: float = 2.0) -> None:
    """Wait for ``condition`` (server-side bookkeeping that ends after the client saw the end)."""
    await until(condition, "the server's bookkeeping", timeout_s=timeout_s, interval_s=0.005)


# -- pure decisions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cursor", "plan"),
    [(None, Follow(after=7)), ("0", Follow(after=0)), ("3", Follow(after=3)),
     ("7", Follow(after=7)), ("8", Refuse("FutureCursor", "cursor 8 is beyond the newest seq, 7")),
     ("-1", "InvalidRequest"), ("abc", "InvalidRequest"), ("1.5", "InvalidRequest"),
     ("+3", "InvalidRequest"), ("", "InvalidRequest"), (" 3", "InvalidRequest")],
)  # fmt: skip
def test_the_cursor_decides_replay_live_or_refusal(cursor: str | None, plan: object) -> None:
    """No cursor follows from the head (live only); a cursor up to the head replays after it;
    one beyond the head is FutureCursor; anything but a decimal seq is InvalidRequest."""
    decided = subscription_plan(cursor, head=7)
    if isinstance(plan, str):
        assert isinstance(decided, Refuse) and decided.error == plan
    else:
        assert decided == plan


def test_query_parameters_are_parsed_with_their_defaults() -> None:
    """Repeated uriPatterns and sources are kept in order; limit defaults to 50, cursor to 0."""
    params = MultiDict([("uriPatterns", "at://did:plc:a/*"), ("uriPatterns", "did:plc:b"),
                        ("sources", SRC)])  # fmt: skip
    assert parse_label_query(params) == LabelQuery(
        ("at://did:plc:a/*", "did:plc:b"), (SRC,), limit=50, cursor=0
    )
    params.extend({"limit": "250", "cursor": "12"})
    assert parse_label_query(params) == LabelQuery(
        ("at://did:plc:a/*", "did:plc:b"), (SRC,), limit=250, cursor=12
    )


MALFORMED_QUERIES = [
    ([], "uriPatterns is required"),
    ([("uriPatterns", "")], "a uriPattern"),
    ([("uriPatterns", "at://*/app.bsky.feed.post/*")], "a uriPattern"),
    ([("uriPatterns", "*x")], "a uriPattern"),
    ([("uriPatterns", "did:plc:a"), ("limit", "0")], "limit is an integer from 1 to 250"),
    ([("uriPatterns", "did:plc:a"), ("limit", "251")], "limit is an integer from 1 to 250"),
    ([("uriPatterns", "did:plc:a"), ("limit", "ten")], "limit is an integer from 1 to 250"),
    ([("uriPatterns", "did:plc:a"), ("limit", "5"), ("limit", "6")], "given 2 times"),
    ([("uriPatterns", "did:plc:a"), ("cursor", "-1")], "cursor is a seq"),
    ([("uriPatterns", "did:plc:a"), ("cursor", "next")], "cursor is a seq"),
]


@pytest.mark.parametrize(("params", "problem"), MALFORMED_QUERIES)
def test_a_malformed_query_says_which_parameter(
    params: list[tuple[str, str]], problem: str
) -> None:
    """Each malformed parameter is a BadRequest naming it."""
    with pytest.raises(BadRequest) as raised:
        parse_label_query(MultiDict(params))
    assert problem in raised.value.message


# -- subscribeLabels -----------------------------------------------------------------------------


async def test_the_atproto_client_replays_every_label_then_receives_a_live_one() -> None:
    """atproto's labels client, from cursor 0, gets every stored label once in seq order, each
    signature verifying against the did:key; a label stored while it listens arrives too."""
    log, metrics = _filled(5), LabelerMetrics()
    received: list[tuple[int, dict[str, Any]]] = []
    replayed, live = asyncio.Event(), asyncio.Event()

    async with _serving(log, metrics) as base:
        client = AsyncFirehoseSubscribeLabelsClient(
            params={"cursor": 0}, base_uri=f"ws://{base}/xrpc"
        )

        async def on_message(message: Any) -> None:
            frame = parse_subscribe_labels_message(message)
            received.extend((frame.seq, label.model_dump()) for label in frame.labels)
            if frame.seq == 5:
                replayed.set()
            if frame.seq == 6:
                live.set()

        running = asyncio.create_task(client.start(on_message))
        await replayed.wait()
        log.append(6, _label(6, neg=True))
        await live.wait()
        await client.stop()
        await running

    assert [seq for seq, _ in received] == [1, 2, 3, 4, 5, 6]
    for seq, fields in received:
        assert fields["uri"] == _post(seq) and fields["src"] == SRC
        assert isinstance(fields["sig"], bytes) and _verifies(fields, fields["sig"])
    assert received[-1][1]["neg"] is True
    assert not _verifies(received[0][1] | {"val": "sexual"}, received[0][1]["sig"])
    assert metrics.registry.get_sample_value("modstream_label_frames_total") == 6
    await _eventually(lambda: _subscribers(metrics) == 0)


async def test_a_cursor_in_the_middle_replays_only_what_follows_it() -> None:
    """cursor=2 over seqs 1..5 sends 3, 4, 5, one seq per binary frame, each a #labels header
    then a body; with no cursor only labels stored after the connection arrive."""
    log = _filled(5)
    async with _serving(log, LabelerMetrics()) as base, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{base}{SUBSCRIBE}?cursor=2") as ws:
            frames = [_decode_frame(await ws.receive_bytes()) for _ in range(3)]
        assert [header for header, _ in frames] == [{"op": 1, "t": "#labels"}] * 3
        assert [body["seq"] for _, body in frames] == [3, 4, 5]
        assert [body["labels"][0]["uri"] for _, body in frames] == [_post(n) for n in (3, 4, 5)]
        assert all(_verifies(label, label["sig"]) for _, b in frames for label in b["labels"])

        async with http.ws_connect(f"ws://{base}{SUBSCRIBE}") as ws:
            log.append(6, _label(6))
            _, body = _decode_frame(await ws.receive_bytes())
        assert body["seq"] == 6 and body["labels"][0]["uri"] == _post(6)


@pytest.mark.parametrize(
    ("cursor", "error"),
    [("6", "FutureCursor"), ("1000", "FutureCursor"), ("-1", "InvalidRequest"),
     ("abc", "InvalidRequest")],
)  # fmt: skip
async def test_a_refused_cursor_gets_one_error_frame_then_the_close(
    cursor: str, error: str
) -> None:
    """A cursor beyond the head (5), or one that is not a seq: one error frame, header
    {op: -1} and body {error, message}, then a close with 1008; no subscriber is counted."""
    metrics = LabelerMetrics()
    async with _serving(_filled(5), metrics) as base, aiohttp.ClientSession() as http:
        async with http.ws_connect(f"ws://{base}{SUBSCRIBE}?cursor={cursor}") as ws:
            header, body = _decode_frame(await ws.receive_bytes())
            closing = await ws.receive()
        assert header == {"op": -1}
        assert body["error"] == error and isinstance(body["message"], str) and body["message"]
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1008
    assert _subscribers(metrics) == 0


async def test_the_atproto_client_reads_a_future_cursor_as_a_refusal() -> None:
    """atproto's client raises the error frame's name rather than reconnecting forever."""
    async with _serving(_filled(2), LabelerMetrics()) as base:
        client = AsyncFirehoseSubscribeLabelsClient(
            params={"cursor": 99}, base_uri=f"ws://{base}/xrpc"
        )

        async def on_message(_message: Any) -> None:
            raise AssertionError("no label is sent for a future cursor")

        with pytest.raises(SubscriptionError, match="FutureCursor"):
            await client.start(on_message)


async def test_closing_the_log_ends_every_subscription_cleanly() -> None:
    """log.close() ends each open subscription with 1001 (going away), the subscribers gauge
    goes up with each connection and back to 0; atproto's client stops without an error."""
    log, metrics = _filled(1), LabelerMetrics()
    async with _serving(log, metrics) as base, aiohttp.ClientSession() as http:
        first = await http.ws_connect(f"ws://{base}{SUBSCRIBE}")
        second = await http.ws_connect(f"ws://{base}{SUBSCRIBE}?cursor=1")
        client = AsyncFirehoseSubscribeLabelsClient(
            params={"cursor": 0}, base_uri=f"ws://{base}/xrpc"
        )
        seen = asyncio.Event()

        async def on_message(_message: Any) -> None:
            seen.set()

        running = asyncio.create_task(client.start(on_message))
        await seen.wait()
        await _eventually(lambda: _subscribers(metrics) == 3)
        log.close()
        for ws in (first, second):
            closing = await ws.receive()
            assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1001
            await ws.close()
        await running  # returns: the close is a normal one to the client
        await _eventually(lambda: _subscribers(metrics) == 0)


async def test_the_app_shutting_down_closes_the_log_and_its_subscriptions() -> None:
    """Leaving the served block with a subscriber open returns at once (not after aiohttp's
    shutdown timeout): the app's shutdown closes the log, which ends the subscription."""
    log, metrics = _filled(1), LabelerMetrics()
    async with aiohttp.ClientSession() as http:
        async with asyncio.timeout(0.9):  # below the close timeout too
            async with _serving(log, metrics) as base:
                ws = await http.ws_connect(f"ws://{base}{SUBSCRIBE}")
                await _eventually(lambda: _subscribers(metrics) == 1)
                receiving = asyncio.create_task(ws.receive())  # the close is answered
            closing = await receiving
        assert closing.type is aiohttp.WSMsgType.CLOSE and closing.data == 1001
    assert log.closed and _subscribers(metrics) == 0


# -- queryLabels and the rest --------------------------------------------------------------------


async def _query(http: aiohttp.ClientSession, base: str, params: Any) -> tuple[int, Any]:
    async with http.get(f"http://{base}{QUERY}", params=params) as response:
        return response.status, await response.json()


def _sig_of(fields: dict[str, Any]) -> bytes:
    encoded = fields["sig"]["$bytes"]
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


async def test_query_labels_by_exact_and_prefix_patterns_and_sources() -> None:
    """An exact URI finds that label; a prefix finds every label under it; sources keeps only
    that labeler's; the JSON sig is $bytes that decode to a signature atproto verifies."""
    log = LabelLog()
    log.append(1, _label(1))
    log.append(2, _label(2, author="bob"))
    log.append(3, _label(3, cid="bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5p4zd6anr2y5xse"))
    log.append(4, _label(4, src=OTHER_SRC, exp="2027-01-01T00:00:00.000Z"))
    metrics = LabelerMetrics()
    async with _serving(log, metrics) as base, aiohttp.ClientSession() as http:
        status, exact = await _query(http, base, {"uriPatterns": _post(2, "bob")})
        _, prefix = await _query(http, base, {"uriPatterns": "at://did:plc:alice/*"})
        _, mine = await _query(
            http, base, [("uriPatterns", "at://did:plc:alice/*"), ("sources", SRC)]
        )
        _, both = await _query(http, base, [("uriPatterns", _post(1)), ("uriPatterns", _post(4))])
        _, everything = await _query(http, base, {"uriPatterns": "*"})
    assert status == 200
    assert [label["uri"] for label in exact["labels"]] == [_post(2, "bob")]
    assert [label["uri"] for label in prefix["labels"]] == [_post(1), _post(3), _post(4)]
    assert [label["uri"] for label in mine["labels"]] == [_post(1), _post(3)]
    assert [label["uri"] for label in both["labels"]] == [_post(1), _post(4)]
    assert len(everything["labels"]) == 4 and "cursor" not in everything
    for fields in everything["labels"]:
        assert len(_sig_of(fields)) == 64
        assert verify_signature(KEY.did_key, _unsigned_cbor(fields), _sig_of(fields))
    assert _queries(metrics, "ok") == 5


def _unsigned_cbor(fields: dict[str, Any]) -> bytes:
    unsigned = {name: fields[name] for name in SIGNED_FIELDS if name in fields}
    return bytes(libipld.encode_dag_cbor(unsigned))


async def test_paging_with_limit_and_cursor_covers_every_label_once() -> None:
    """Pages of 3 over 10 labels follow each answer's cursor until none is given: every label
    comes exactly once, in seq order."""
    async with _serving(_filled(10), LabelerMetrics()) as base, aiohttp.ClientSession() as http:
        uris: list[str] = []
        pages = 0
        params: dict[str, str] = {"uriPatterns": "at://did:plc:alice/*", "limit": "3"}
        while True:
            status, page = await _query(http, base, params)
            assert status == 200 and len(page["labels"]) <= 3
            uris += [label["uri"] for label in page["labels"]]
            pages += 1
            if "cursor" not in page:
                break
            params["cursor"] = page["cursor"]
    assert uris == [_post(n) for n in range(1, 11)] and pages == 4


@pytest.mark.parametrize(("params", "problem"), MALFORMED_QUERIES)
async def test_a_malformed_query_is_a_400_in_the_xrpc_error_shape(
    params: list[tuple[str, str]], problem: str
) -> None:
    """Over HTTP each malformed parameter is 400 {"error": "InvalidRequest", "message"},
    counted as an error."""
    metrics = LabelerMetrics()
    async with _serving(_filled(1), metrics) as base, aiohttp.ClientSession() as http:
        status, body = await _query(http, base, params)
    assert status == 400
    assert body["error"] == "InvalidRequest" and problem in body["message"]
    assert _queries(metrics, "error") == 1


async def test_health_metrics_and_an_unknown_method() -> None:
    """_health gives the version; /metrics the registry; a method this server lacks is 404
    MethodNotImplemented."""
    async with _serving(_filled(1), LabelerMetrics()) as base, aiohttp.ClientSession() as http:
        async with http.get(f"http://{base}/xrpc/_health") as response:
            health = await response.json()
        async with http.get(f"http://{base}/metrics") as response:
            exposition = await response.text()
        async with http.get(f"http://{base}/xrpc/com.atproto.label.nope") as response:
            status, missing = response.status, await response.json()
    assert set(health) == {"version"} and health["version"]
    assert "modstream_label_subscribers 0.0" in exposition
    assert status == 404 and missing["error"] == "MethodNotImplemented" and missing["message"]


async def _stalled_subscriber(base: str, path: str) -> socket.socket:
    """A WebSocket subscriber that upgrades, then never reads again (a tiny receive window)."""
    host, port = base.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, (host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    request = (f"GET {path} HTTP/1.1\r\nHost: {base}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n")  # fmt: skip
    await loop.sock_sendall(sock, request.encode())
    assert (await loop.sock_recv(sock, 12)).startswith(b"HTTP/1.1 101")
    return sock


async def test_a_subscriber_that_stops_reading_is_dropped_without_holding_others() -> None:
    """A subscriber replaying a long log that stops reading is dropped once a send waits past
    the send timeout; meanwhile another subscriber gets a live label at once."""
    label = _label(1)
    log, metrics = LabelLog(), LabelerMetrics()
    for seq in range(1, 40_001):  # ~13 MB of frames: more than any socket buffers
        log.append(seq, label)
    async with (
        _serving(log, metrics, send_timeout_s=0.5) as base,
        aiohttp.ClientSession() as http,
    ):
        stalled = await _stalled_subscriber(base, f"{SUBSCRIBE}?cursor=0")
        try:
            async with http.ws_connect(f"ws://{base}{SUBSCRIBE}") as ws:
                await _eventually(lambda: _subscribers(metrics) == 2)
                log.append(40_001, _label(2))
                _, body = _decode_frame(await ws.receive_bytes())
                assert body["seq"] == 40_001
                assert _subscribers(metrics) == 2  # the stalled one is still waiting to send
                await _eventually(lambda: _subscribers(metrics) == 1)
            frames = metrics.registry.get_sample_value("modstream_label_frames_total")
            assert frames is not None and 1 < frames < 40_000
        finally:
            stalled.close()
