"""Bounded in-flight work: when the scorer falls behind, consumption pauses, nothing is lost."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from modstream.demo.imageserver import ImageServer
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.step import ModerationSettings
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.pipeline.stream.scoring import StreamConfig
from modstream.pipeline.stream.service import Pipeline, PipelineSettings

from .conftest import Broker
from .support import OutputReader, produce, unique_group, unique_topics

pytestmark = pytest.mark.asyncio(loop_scope="session")
MAX_IN_FLIGHT = 4
EVENTS = 60


async def test_backlog_is_consumed_within_the_in_flight_bound(
    any_broker: Broker, image_server: ImageServer, scorer_settings: ScorerConfig
) -> None:
    """A backlog 15x the in-flight bound never has more than the bound in flight, and completes."""
    assert image_server.served is not None
    topics = unique_topics("backpressure")
    settings = PipelineSettings(
        kafka=any_broker.kafka,
        partitions=2,
        moderation=ModerationSettings(
            scorer=scorer_settings,
            fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"])),
            cache=CacheConfig(max_entries=0),  # every event costs a real fetch and inference
        ),
        stream=StreamConfig(
            topics=topics, group_id=unique_group("backpressure"), max_in_flight=MAX_IN_FLIGHT
        ),
        metrics_port=None,
        session_timeout_s=2.0,
        fetch_max_wait_s=0.02,
    )
    urls = image_server.served.image_urls()
    values: list[bytes | None] = [
        orjson.dumps({"id": f"bp-{n}", "url": f"{urls[n % len(urls)]}?n={n}"})
        for n in range(EVENTS)
    ]
    stop, ready = asyncio.Event(), asyncio.Event()
    async with Pipeline(settings) as pipeline:
        await produce(any_broker.bootstrap_servers, topics.incoming, values, partitions=2)
        scorer = asyncio.create_task(pipeline.run_scorer(stop, ready))
        try:
            async with OutputReader(any_broker.bootstrap_servers, topics.outputs()) as reader:
                await reader.wait_until(
                    lambda outputs: len(outputs) >= EVENTS, timeout_s=90, what="all outputs"
                )
                ids = sorted(output.record["id"] for output in reader.outputs)
            assert pipeline.stream is not None
            stats = pipeline.stream.statistics()
        finally:
            stop.set()
            await asyncio.gather(scorer, return_exceptions=True)
    assert ids == sorted(f"bp-{n}" for n in range(EVENTS))
    assert stats.peak_tasks <= MAX_IN_FLIGHT, stats
    assert stats.pauses >= 1, stats
    assert stats.published[topics.errors] == 0, stats
