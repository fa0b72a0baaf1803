"""The Jetstream connector: frames read purely, and the websocket source against a replica."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from replicas.jetstream import (
    JetstreamReplica,
    account,
    delete,
    external,
    images,
    like,
    post,
    record_with_media,
    video,
)

from modstream.backoff import BackoffPolicy
from modstream.connectors.jetstream import JetstreamOptions, JetstreamSource
from modstream.connectors.jetstream.cursor import (
    parse_position,
    resume_cursor,
    subscribe_url,
)
from modstream.connectors.jetstream.frames import ImageLinks, MalformedFrame, read_frame
from modstream.connectors.recent import RecentIds
from modstream.connectors.registry import SourceSpec, make_source
from modstream.errors import ConfigError, SourceError

from .streams import take_events

DID = "did:plc:z72i7hdynmk6r22z27h6tvur"
OTHER = "did:web:images.example.com%3A8443"
CID_A = "bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
CID_B = "bafkreibbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
CID_V = "bafkreivvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv"
LINKS = ImageLinks(image_base_url="http://cdn.test", video_base_url="http://video.test")


def _read(frame: object, links: ImageLinks = LINKS) -> tuple[int, list[dict[str, object]], int]:
    reading = read_frame(orjson.dumps(frame), links, observed_at=1.0)
    return reading.time_us, [e.fields() for e in reading.events], reading.unreadable


def test_an_images_post_yields_each_image_with_its_uri_alt_and_self_labels() -> None:
    """Up to four images per post, ids ``at-uri#index``, the CDN URL from did and cid."""
    frame = post(DID, "3kabc", 1_700_000_000_000_001,
                 images((CID_A, "a cat"), (CID_B, "")), self_labels=("nudity", "porn"))  # fmt: skip
    time_us, events, unreadable = _read(frame)
    uri = f"at://{DID}/app.bsky.feed.post/3kabc"
    assert (time_us, unreadable) == (1_700_000_000_000_001, 0)
    assert [e["id"] for e in events] == [f"{uri}#0", f"{uri}#1"]
    assert events[0]["url"] == f"http://cdn.test/img/feed_fullsize/plain/{DID}/{CID_A}@jpeg"
    assert events[0]["source"] == "jetstream"
    assert events[0]["meta"] == {
        "post": uri, "did": DID, "index": 0, "embed": "images", "alt": "a cat",
        "self_labels": ["nudity", "porn"], "time_us": 1_700_000_000_000_001,
        "post_cid": "bafyreipost3kabc",  # the post record's version, which a label pins
    }  # fmt: skip


def test_record_with_media_yields_the_media_images() -> None:
    """A quote post with images: the images of ``media`` are scored, the quoted record is not."""
    embed = record_with_media(images((CID_A, "quoted")), f"at://{OTHER}/app.bsky.feed.post/x")
    _time, events, _ = _read(post(OTHER, "3kq", 5, embed))
    assert [e["url"] for e in events] == [
        f"http://cdn.test/img/feed_fullsize/plain/{OTHER}/{CID_A}@jpeg"
    ]


def test_link_cards_and_video_thumbnails_only_when_asked() -> None:
    """External thumbnails and video thumbnails are options, off by default."""
    card = post(DID, "3ke", 7, external("https://news.example/a", CID_B))
    clip = post(DID, "3kv", 8, record_with_media(video(CID_V, "a clip"), "at://x/y/z"))
    assert _read(card)[1] == [] and _read(clip)[1] == []
    wide = ImageLinks(image_base_url="http://cdn.test", video_base_url="http://video.test",
                      external_thumbnails=True, video_thumbnails=True)  # fmt: skip
    (card_event,) = _read(card, wide)[1]
    (clip_event,) = _read(clip, wide)[1]
    assert card_event["meta"]["link"] == "https://news.example/a"  # type: ignore[index]
    assert (
        clip_event["url"]
        == f"http://video.test/watch/did%3Aplc%3Az72i7hdynmk6r22z27h6tvur/{CID_V}/thumbnail.jpg"
    )
    assert clip_event["meta"]["alt"] == "a clip"  # type: ignore[index]


def test_frames_without_post_images_move_the_position_and_yield_nothing() -> None:
    """Deletes, likes, account events and text-only posts: a position, no events."""
    for frame in (
        delete(DID, "3kabc", 11),
        like(DID, "3kl", 12, f"at://{DID}/app.bsky.feed.post/3kabc"),
        account(DID, 13),
        post(DID, "3kt", 14),
    ):
        time_us, events, unreadable = _read(frame)
        assert (events, unreadable) == ([], 0)
        assert time_us == frame["time_us"]


@pytest.mark.parametrize(
    "raw",
    [
        b"not json",
        b"[1, 2]",
        b'{"kind": "commit"}',
        orjson.dumps(post("did:plc:../../etc", "3k", 1, images((CID_A, "")))),
        orjson.dumps({**post(DID, "3k", 1), "time_us": "soon"}),
    ],
)
def test_frames_that_are_not_jetstream_events_are_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedFrame):
        read_frame(raw, LINKS, observed_at=0.0)


def test_a_blob_whose_cid_could_leave_the_url_path_is_skipped_and_counted() -> None:
    """A cid like ``../x`` never becomes a URL; the post's other images are still read."""
    frame = post(DID, "3kx", 3, images(("../../admin", ""), (CID_A, "")))
    frame["commit"]["record"]["embed"]["images"].append({"alt": "no blob"})
    _time, events, unreadable = _read(frame)
    assert [e["id"] for e in events] == [f"at://{DID}/app.bsky.feed.post/3kx#0"]
    assert unreadable == 2


def test_the_subscription_url_keeps_the_users_query_and_sets_the_cursor() -> None:
    url = subscribe_url("wss://js.example/subscribe?wantedDids=did:plc:a&cursor=5",
                        ("app.bsky.feed.post",), 1234)  # fmt: skip
    assert url == (
        "wss://js.example/subscribe?wantedDids=did%3Aplc%3Aa"
        "&wantedCollections=app.bsky.feed.post&cursor=1234"
    )
    own = subscribe_url("ws://h/subscribe?wantedCollections=app.bsky.*", ("x",), None)
    assert own == "ws://h/subscribe?wantedCollections=app.bsky.%2A"


def test_a_resume_starts_a_few_seconds_before_the_last_position() -> None:
    assert resume_cursor(None, 5.0) is None
    assert resume_cursor(10_000_000, 2.5) == 7_500_000
    assert resume_cursor(1_000, 2.5) == 0
    assert [parse_position(p) for p in (None, "12", "-3", "soon")] == [None, 12, None, None]


def test_recent_ids_forget_the_oldest_beyond_capacity() -> None:
    recent = RecentIds(capacity=2)
    assert [recent.first_sighting(i) for i in "aab"] == [True, False, True]
    assert recent.first_sighting("c") and recent.first_sighting("a")  # "a" was forgotten
    assert len(recent) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "https://js.example/subscribe"}, "ws:// or wss://"),
        ({"url": "wss://js.example/subscribe?compress=true"}, "compress"),
        ({"image_base_url": "cdn.bsky.app"}, "image_base_url"),
        ({"rewind_s": "-1"}, "rewind_s"),
        ({"rewind": "3"}, "valid: url, image-base-url"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(
    options: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_source(SourceSpec("jetstream"), options)


# -- the websocket source against the replica ------------------------------------------------


def _source(replica: JetstreamReplica, **options: object) -> JetstreamSource:
    return JetstreamSource(
        JetstreamOptions(url=replica.url, image_base_url="http://cdn.test", **options),  # type: ignore[arg-type]
        backoff=BackoffPolicy(initial_s=0.05, max_s=0.2),
    )


async def test_a_dropped_connection_resumes_from_a_rewound_cursor_without_repeats() -> None:
    """Cut mid-stream: the source reconnects with cursor = last time_us - rewind and publishes
    every image once, though the rewound replay sends some twice."""
    base = 1_700_000_000_000_000
    async with JetstreamReplica() as replica, _source(replica, rewind_s=0.000_010) as source:
        stream = source.emissions(str(base))  # resume from a saved position
        frames = [post(DID, f"3k{n}", base + 5 * n, images((CID_A, str(n)))) for n in range(10)]
        await replica.publish(*frames)
        replica.drop_after(4)
        emissions = await take_events(stream, 10)
        await stream.aclose()
        statistics = source.statistics()
    first, second = replica.subscriptions[:2]
    assert first.cursor == base - 10 and first.collections == ["app.bsky.feed.post"]
    assert second.cursor == base + 5 * 3 - 10  # the last frame seen, rewound 10 µs
    ids = [event.id for emission in emissions for event in emission.events]
    assert ids == [f"at://{DID}/app.bsky.feed.post/3k{n}#0" for n in range(10)]
    assert [e.position for e in emissions] == [str(base + 5 * n) for n in range(10)]
    assert statistics.reconnects == 1 and statistics.events == 10 and statistics.connected


async def test_malformed_frames_are_counted_and_skipped() -> None:
    """Garbage between posts does not stop the stream; each bad frame counts once."""
    async with JetstreamReplica() as replica, _source(replica) as source:
        stream = source.emissions(None)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(replica.wait_for_subscribers(), 5)
        await replica.publish_raw("{not json", time_us=1)
        await replica.publish_raw('{"kind": "commit"}', time_us=2)
        await replica.publish(post(DID, "3ka", 3, images((CID_A, ""))))
        emission = await asyncio.wait_for(first, 10)
        await stream.aclose()
    assert [e.id for e in emission.events] == [f"at://{DID}/app.bsky.feed.post/3ka#0"]
    assert source.statistics().malformed == 2


async def test_a_refused_subscription_is_a_source_error() -> None:
    """A 400 to the handshake (a bad query) is not retried forever: it stops the run."""
    async with JetstreamReplica() as replica:
        source = JetstreamSource(JetstreamOptions(url=replica.url + "?bogus=1"))
        async with source:
            with pytest.raises(SourceError, match="HTTP 400"):
                await anext(source.emissions(None))
