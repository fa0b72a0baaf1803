"""Animations and videos through the Kafka stream: results with ``frames``, hostile media as errors.

One pipeline per broker; the image server hands out an animated GIF, an APNG, an MP4 and a WebM
with one explicit frame each, a truncated MP4 and a video above the duration cap.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import mediagen
import orjson
import pytest
import pytest_asyncio

from modstream.demo.imageserver import ImageServer
from modstream.models.decode import DecodeLimits, VideoLimits
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.fetcher import FetchConfig
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.step import ModerationSettings
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.pipeline.stream.scoring import StreamConfig
from modstream.pipeline.stream.service import Pipeline, PipelineSettings

from .conftest import Broker
from .support import Output, outputs_then_stop, produce, scorer_ready, unique_group, unique_topics

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _media() -> dict[str, bytes]:
    clip = mediagen.video("mp4")
    return {
        "a.gif": mediagen.animation("GIF"),
        "a.png": mediagen.animation("PNG"),
        "v.mp4": clip,
        "v.webm": mediagen.video("webm"),
        "cut.mp4": clip[: len(clip) // 2],
        "long.webm": mediagen.video("webm", seconds=6.0),
    }


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def outputs(any_broker: Broker, scorer_settings: ScorerConfig) -> AsyncIterator[list[Output]]:
    topics = unique_topics("media")
    limits = DecodeLimits(video=VideoLimits(max_duration_s=5.0))
    settings = PipelineSettings(
        kafka=any_broker.kafka, partitions=2,
        moderation=ModerationSettings(
            scorer=dataclasses.replace(scorer_settings, limits=limits),
            fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=5.0),
            cache=CacheConfig(max_entries=0),
        ),
        stream=StreamConfig(topics=topics, group_id=unique_group("media")),
        metrics_port=None, session_timeout_s=2.0, fetch_max_wait_s=0.02,
    )  # fmt: skip
    stop, ready = asyncio.Event(), asyncio.Event()
    async with ImageServer(_media()) as server, Pipeline(settings) as pipeline:
        scorer = asyncio.create_task(pipeline.run_scorer(stop, ready))
        await scorer_ready(ready, scorer)
        events = [
            orjson.dumps({"id": name, "url": url, "source": "test", "observed_at": time.time()})
            for name, url in zip(server.served.names, server.served.image_urls(), strict=True)
        ]
        await produce(any_broker.bootstrap_servers, topics.incoming, events, partitions=2)
        yield await outputs_then_stop(
            any_broker.bootstrap_servers, topics, len(events), scorer, stop, timeout_s=90
        )


async def test_each_animation_and_video_is_one_result_decided_by_its_worst_frame(
    outputs: list[Output],
) -> None:
    """One output per event; the four media are flagged by their explicit frame, with frames."""
    by_id = {o.record["id"]: o for o in outputs}
    assert len(outputs) == len(by_id) == 6
    for name in ("a.gif", "a.png", "v.mp4", "v.webm"):
        record = by_id[name].record
        assert record["decision"] == "flagged", record
        assert max(record["frames"]["scores"]) == record["nsfw"]
    assert by_id["a.gif"].record["frames"]["worst_index"] == 4
    assert 2.0 <= by_id["v.mp4"].record["frames"]["worst_offset_s"] < 2.5


async def test_hostile_media_land_on_the_errors_topic_with_their_kinds(
    outputs: list[Output],
) -> None:
    """A truncated MP4 and a video above the duration cap are error records, not crashes."""
    errors = {o.record["id"]: o.record["error"]["kind"] for o in outputs if "error" in o.record}
    assert errors == {"cut.mp4": "truncated", "long.webm": "too_long"}
