"""The Mastodon connector: SSE and statuses read purely, the source against a replica server."""

from __future__ import annotations

import asyncio

import pytest
from replicas.mastodon import MastodonReplica, attachment, status

from modstream.backoff import BackoffPolicy
from modstream.connectors.base import Emission
from modstream.connectors.mastodon import MastodonOptions, MastodonSource
from modstream.connectors.mastodon.endpoints import StreamEndpoints, streaming_base_from_instance
from modstream.connectors.mastodon.sse import SseDecoder, SseEvent
from modstream.connectors.mastodon.statuses import images_in_status, newer_id
from modstream.connectors.registry import SourceSpec, make_source
from modstream.errors import ConfigError, SourceUnauthorized

from .streams import take_events

IMG = "https://files.replica.test/media_attachments/files/1/original/a.jpg"
PREVIEW = "https://files.replica.test/media_attachments/files/1/small/a.png"


def test_the_sse_decoder_follows_the_event_stream_grammar() -> None:
    """Comments are heartbeats, data lines join with newlines, ids persist, blank lines dispatch."""
    decoder = SseDecoder()
    lines = [":)", ":thump", "event: update", "data: {\"a\":", "data:1}", "", "id: 7\r\n",
             "event: delete", "data: 12", "", "event: ping", "", "data: plain", ""]  # fmt: skip
    events = [event for line in lines if (event := decoder.feed(line)) is not None]
    assert events == [
        SseEvent("update", '{"a":\n1}', None),
        SseEvent("delete", "12", "7"),
        SseEvent("message", "plain", "7"),
    ]
    assert decoder.comments == 2


def test_a_status_yields_its_images_gifv_and_videos_with_their_warnings() -> None:
    """Images, gifv and videos by ``url`` (their frames are scored; ``preview_url`` while the
    original is missing); audio skipped; the content warning and sensitive flag in ``meta``."""
    item = status(
        "109876543210",
        attachment("1", url=IMG, preview_url=PREVIEW, description="a beach"),
        attachment("2", url=None, preview_url=PREVIEW),
        attachment("3", "gifv", url="https://files.replica.test/a.mp4", preview_url=PREVIEW),
        attachment("4", "video", url="https://files.replica.test/b.mp4", preview_url=PREVIEW),
        attachment("5", "image", url="javascript:alert(1)"),
        attachment("6", "audio", url="https://files.replica.test/c.mp3", preview_url=PREVIEW),
        attachment("7", "video", url=None, preview_url=PREVIEW),
        sensitive=True,
        spoiler_text="nsfw",
    )
    events = images_in_status(item, server="mastodon.test", observed_at=3.0)
    assert [(e.id, e.url) for e in events] == [
        ("mastodon:mastodon.test:109876543210:1", IMG),
        ("mastodon:mastodon.test:109876543210:2", PREVIEW),
        ("mastodon:mastodon.test:109876543210:3", "https://files.replica.test/a.mp4"),
        ("mastodon:mastodon.test:109876543210:4", "https://files.replica.test/b.mp4"),
        ("mastodon:mastodon.test:109876543210:7", PREVIEW),
    ]
    assert [e.meta["type"] for e in events[2:]] == ["gifv", "video", "video"]
    assert events[0].meta == {
        "post": "https://replica.test/users/alice/statuses/109876543210",
        "status": "109876543210", "status_url": "https://replica.test/@alice/109876543210",
        "account": "alice", "sensitive": True, "spoiler_text": "nsfw", "attachment": "1",
        "type": "image", "alt": "a beach",
    }  # fmt: skip
    assert {e.source for e in events} == {"mastodon"}


def test_status_ids_compare_as_numbers() -> None:
    assert newer_id("99", "100") == "100"
    assert newer_id(None, "5") == "5" and newer_id("5", None) == "5"


def test_streams_and_their_timelines() -> None:
    """Each stream's SSE path and the timeline that fills its gaps, all with only_media."""
    local = StreamEndpoints(server="https://m.test", stream="local")
    assert local.stream_url("https://stream.m.test") == (
        "https://stream.m.test/api/v1/streaming/public/local",
        {"only_media": "true"},
    )
    assert local.timeline_url(min_id="9", limit=40) == (
        "https://m.test/api/v1/timelines/public",
        {"only_media": "true", "min_id": "9", "limit": "40", "local": "true"},
    )
    tag = StreamEndpoints(server="https://m.test", stream="hashtag", tag="cat pics")
    assert tag.stream_url("https://m.test")[1] == {"only_media": "true", "tag": "cat pics"}
    assert (
        tag.timeline_url(min_id="1", limit=5)[0] == "https://m.test/api/v1/timelines/tag/cat%20pics"
    )


def test_the_streaming_host_comes_from_the_instance_document() -> None:
    instance = {"configuration": {"urls": {"streaming": "wss://streaming.m.test"}}}
    assert streaming_base_from_instance(instance, "https://m.test") == "https://streaming.m.test"
    assert streaming_base_from_instance({"configuration": {}}, "https://m.test") == "https://m.test"
    assert streaming_base_from_instance([], "https://m.test") == "https://m.test"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "needs url"),
        ({"url": "mastodon.social"}, "needs url"),
        ({"url": "https://m.test", "stream": "federated"}, "stream must be one of"),
        ({"url": "https://m.test", "stream": "hashtag"}, "needs a tag"),
        ({"url": "https://m.test", "backfill-limit": "many"}, "backfill-limit"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_source(SourceSpec("mastodon"), options)


# -- the source against the replica ----------------------------------------------------------


def _source(
    replica: MastodonReplica, token: str | None = "replica-token", **options: object
) -> MastodonSource:
    return MastodonSource(
        MastodonOptions(url=replica.url, idle_timeout_s=5.0, **options),  # type: ignore[arg-type]
        token=token,
        backoff=BackoffPolicy(initial_s=0.05, max_s=0.2),
    )


def _photo(status_id: int, **kwargs: object) -> dict[str, object]:
    return status(str(status_id), attachment(f"a{status_id}", url=f"{IMG}?{status_id}"), **kwargs)  # type: ignore[arg-type]


def _ids(emissions: list[Emission]) -> list[str]:
    return [event.id.rsplit(":", 2)[1] for emission in emissions for event in emission.events]


async def test_a_dropped_stream_is_backfilled_from_the_timeline_without_repeats() -> None:
    """Mastodon sends no event ids: after a cut the source pages the timeline from the last
    status seen (min_id), so statuses posted while it was away arrive, each once."""
    async with MastodonReplica(heartbeat_s=0.05) as replica, _source(replica) as source:
        stream = source.emissions(None)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(replica.wait_for_streams(1), 5)
        replica.drop_after(2)
        await replica.publish(*(_photo(100 + n) for n in range(2)))
        emissions = [await asyncio.wait_for(first, 5)]
        await replica.publish(*(_photo(100 + n) for n in range(2, 6)))  # while it is away
        emissions += await take_events(stream, 5)
        await replica.wait_for_streams(2)
        await replica.publish(_photo(106))
        emissions += await take_events(stream, 1)
        await stream.aclose()
    assert _ids(emissions) == [str(100 + n) for n in range(7)]
    (backfill,) = replica.timeline_requests()
    # the cut can lose the second event in flight: the gap starts at the last status read
    assert backfill.query["min_id"] in ("100", "101") and backfill.query["only_media"] == "true"
    assert emissions[-1].position == "106"
    statistics = source.statistics()
    assert (statistics.reconnects, statistics.events, statistics.malformed) == (1, 7, 0)


async def test_a_server_that_sends_event_ids_is_resumed_with_last_event_id() -> None:
    """Where the stream carries ids, the reconnect sends Last-Event-ID and needs no backfill."""
    async with MastodonReplica(event_ids=True) as replica, _source(replica) as source:
        stream = source.emissions(None)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(replica.wait_for_streams(1), 5)
        replica.drop_after(1)
        await replica.publish(*(_photo(200 + n) for n in range(4)))
        emissions = [await asyncio.wait_for(first, 5), *await take_events(stream, 3)]
        await stream.aclose()
    assert _ids(emissions) == ["200", "201", "202", "203"]
    streams = [r for r in replica.requests if r.path.startswith("/api/v1/streaming/")]
    assert [r.last_event_id for r in streams] == [None, "200"]
    assert replica.timeline_requests() == []


async def test_a_restart_backfills_from_the_saved_status_up_to_the_limit() -> None:
    """With a saved position the gap is paged forward, at most ``backfill_limit`` statuses."""
    async with MastodonReplica() as replica:
        await replica.publish(*(_photo(300 + n) for n in range(60)))
        async with _source(replica, backfill_limit=50) as source:
            stream = source.emissions("309")
            emissions = await take_events(stream, 50)
            await stream.aclose()
    assert _ids(emissions) == [str(310 + n) for n in range(50)]
    assert [r.query["min_id"] for r in replica.timeline_requests()] == ["309", "349"]
    assert [r.query["limit"] for r in replica.timeline_requests()] == ["40", "10"]


async def test_a_hashtag_stream_reads_only_its_tag() -> None:
    async with (
        MastodonReplica() as replica,
        _source(replica, stream="hashtag", tag="cats") as source,
    ):
        stream = source.emissions(None)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(replica.wait_for_streams(1), 5)
        await replica.publish(_photo(400, tags=("dogs",)), _photo(401, tags=("cats",)))
        emission = await asyncio.wait_for(first, 5)
        await stream.aclose()
    assert _ids([emission]) == ["401"]
    assert replica.requests[-1].query == {"only_media": "true", "tag": "cats"}


@pytest.mark.parametrize("token", [None, "wrong-token"])
async def test_a_401_stops_the_run_and_names_the_token_variable(token: str | None) -> None:
    """Since 4.2 streams need a user token: a missing or refused one is not retried forever."""
    async with MastodonReplica() as replica, _source(replica, token=token) as source:
        with pytest.raises(SourceUnauthorized, match=r"MASTODON_ACCESS_TOKEN.*read:statuses"):
            await asyncio.wait_for(anext(source.emissions(None)), 5)


async def test_garbage_in_the_stream_is_counted_and_skipped() -> None:
    """An update whose status has no id is malformed and skipped; the stream goes on."""
    async with MastodonReplica() as replica, _source(replica) as source:
        stream = source.emissions(None)
        first = asyncio.ensure_future(anext(stream))
        await asyncio.wait_for(replica.wait_for_streams(1), 5)
        broken = {**_photo(500), "id": None}
        await replica.publish(broken, _photo(501))
        emission = await asyncio.wait_for(first, 5)
        await stream.aclose()
    assert _ids([emission]) == ["501"]
    assert source.statistics().malformed == 1
