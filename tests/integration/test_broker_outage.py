"""A scorer started before its broker waits with backoff, then serves once the broker is up."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path

import orjson
import pytest

from modstream.backoff import BackoffPolicy
from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics, free_loopback_port
from modstream.kafka.settings import GroupTimings, KafkaSettings
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.policy import Policy
from modstream.pipeline.moderate.step import ModerationSettings, open_moderator
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.pipeline.stream.scoring import ScoringStream, StreamConfig

from .support import outputs_then_stop, produce, unique_group, unique_topics

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARTITIONS = 2


async def test_stream_waits_for_a_late_broker_then_scores_everything(
    tmp_path: Path,
    image_server: ImageServer,
    scorer_settings: ScorerConfig,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With no broker the stream retries and stays up; once one starts, each event gets 1 output."""
    topics = unique_topics("outage")
    port = free_loopback_port()
    servers = f"127.0.0.1:{port}"
    config = StreamConfig(
        topics=topics,
        group_id=unique_group("outage"),
        retry=BackoffPolicy(initial_s=0.1, max_s=0.5, jitter=0.0),
        timings=GroupTimings(session_timeout_s=2.0),  # tansu makes a join wait half of it
    )
    moderation = ModerationSettings(
        scorer=scorer_settings,
        policy=Policy(name="t", flag_at=0.8, review_at=0.3),
        fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"])),
    )
    broker = EmbeddedBroker(port=port, log_path=tmp_path / "tansu.log")
    stop, ready = asyncio.Event(), asyncio.Event()
    caplog.set_level(logging.WARNING, logger="modstream.stream")
    async with open_moderator(moderation) as moderator:
        kafka = KafkaSettings(bootstrap_servers=servers)
        stream = ScoringStream(config, kafka, moderator, PipelineMetrics())
        task = asyncio.create_task(stream.run(stop, ready))
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(1.0):
                    await ready.wait()
            assert not task.done(), "the stream gave up while the broker was away"
            retries = [r for r in caplog.records if r.name == "modstream.stream"]
            assert len(retries) >= 2, "expected repeated connection attempts with backoff"

            await broker.start()
            specs = [TopicSpec(topics.incoming, PARTITIONS)]
            specs += [TopicSpec(name, PARTITIONS) for name in topics.outputs()]
            await ensure_topics(KafkaSettings(bootstrap_servers=servers), specs)
            async with asyncio.timeout(30):
                await ready.wait()

            assert image_server.served is not None
            events = {
                f"outage-{n}": {"id": f"outage-{n}", "url": f"{url}?n=outage-{n}"}
                for n, url in enumerate(image_server.served.image_urls())
            }
            values = [orjson.dumps(event) for event in events.values()]
            await produce(servers, topics.incoming, values, partitions=PARTITIONS)

            outputs = await outputs_then_stop(
                servers, topics, len(events), task, stop, timeout_s=45
            )
            counts = Counter(o.record["id"] for o in outputs)
            errors = [o.record for o in outputs if o.topic == topics.errors]
        finally:
            stop.set()
            if not task.done():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await broker.stop()
    assert counts == dict.fromkeys(events, 1)
    assert errors == []
