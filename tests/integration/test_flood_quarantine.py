"""Flood quarantine against a stream: a deliberately bad bank entry matches a flood of images.

The bad entry is the hash of a template (a plain backdrop, a dark disc, a light panel: what a meme
template or a watermark looks like to PDQ); the stream brings many distinct images of it, each
with a small mark of its own (distinct sha256, hashes within 10 bits). With ``--flood-limit 3``
the first three are matched, the fourth and every later one go to review marked
``quarantined``, one log line names the entry, the metric counts it; ``modstream bank release``
(the real command, on the bank topic) lets the next ones be matched again.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import locations
import numpy as np
import orjson
import pytest
import pytest_asyncio
from PIL import Image, ImageDraw
from polling import until

from modstream.backoff import BackoffPolicy
from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker
from modstream.kafka.publish import Publisher
from modstream.models.decode import DecodeLimits
from modstream.models.preprocess import hash_image
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.fetcher import FetchConfig
from modstream.pipeline.match.flood import FloodSettings
from modstream.pipeline.match.records import bank_record
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.policy import Policy
from modstream.pipeline.moderate.step import ModerationSettings
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.pipeline.stream.scoring import StreamConfig
from modstream.pipeline.stream.service import Pipeline, PipelineSettings

from .support import OutputReader, produce, scorer_ready, unique_group, unique_topics

pytestmark = pytest.mark.asyncio(loop_scope="session")

LIMIT = 3
IMAGES = 12


def _template(seed: int) -> bytes:
    """The template with a small mark of its own (seed 0: the banked one)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:480, 0:640]
    backdrop = (60 + 0.25 * xx + 0.15 * yy).astype(np.uint8)
    image = Image.fromarray(np.stack([backdrop] * 3, axis=-1))
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 50, 300, 290), fill=(30, 30, 30))
    draw.rectangle((380, 300, 600, 440), fill=(230, 230, 230))
    x, y = int(rng.integers(0, 620)), int(rng.integers(0, 460))
    draw.rectangle((x, y, x + 8, y + 8), fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    pixels = np.clip(np.asarray(image, np.int16) + rng.normal(0, 2, (480, 640, 3)), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@dataclass
class Flooded:
    broker: EmbeddedBroker
    pipeline: Pipeline
    server: ImageServer
    bank_topic: str
    entry: str  # the bad entry's hex


@pytest_asyncio.fixture(loop_scope="session")
async def flooded(broker: EmbeddedBroker, scorer_settings: ScorerConfig) -> AsyncIterator[Flooded]:
    images = {f"t{n}.jpg": _template(n) for n in range(IMAGES + 1)}
    entry = hash_image(images["t0.jpg"], DecodeLimits()).pdq
    topics = unique_topics("flood")
    bank_topic = f"{topics.incoming.removesuffix('.incoming')}.banks"
    retry = BackoffPolicy(initial_s=0.25, max_s=1.0)
    async with Publisher(broker.kafka, role="test", linger_ms=0, retry=retry) as publisher:
        await publisher.send_all(bank_topic, [bank_record("known", entry.bits, "template", "t")])
    settings = PipelineSettings(
        kafka=broker.kafka,
        partitions=1,
        moderation=ModerationSettings(
            policy=Policy(name="t", flag_at=0.9, review_at=0.5),
            scorer=scorer_settings,
            fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=5.0),
            cache=CacheConfig(max_entries=0),
            live_banks=True,
            flood=FloodSettings(limit=LIMIT, window_s=600),
        ),
        stream=StreamConfig(topics=topics, group_id=unique_group("flood")),
        metrics_port=None,
        session_timeout_s=2.0,
        fetch_max_wait_s=0.02,
        bank_topic=bank_topic,
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    async with ImageServer(images) as server, Pipeline(settings) as pipeline:
        scorer = asyncio.create_task(pipeline.run_scorer(stop, ready))
        await scorer_ready(ready, scorer)
        try:
            yield Flooded(broker, pipeline, server, bank_topic, entry.hex)
        finally:
            stop.set()
            await asyncio.wait_for(scorer, 40)


async def _results(flooded: Flooded, names: list[str]) -> list[dict[str, object]]:
    """One event per image, one after the other (the order the guard sees them); their
    result records, in that order."""
    topics = flooded.pipeline.settings.stream.topics
    assert flooded.server.served is not None
    ids = [f"fl-{uuid.uuid4().hex[:8]}" for _ in names]
    records: dict[str, dict[str, object]] = {}
    async with OutputReader(flooded.broker.bootstrap_servers, topics.outputs()) as reader:
        for event_id, name in zip(ids, names, strict=True):
            url = f"{flooded.server.served.base_url}/img/{name}"
            event = orjson.dumps({"id": event_id, "url": url, "source": "test"})
            await produce(flooded.broker.bootstrap_servers, topics.incoming, [event], partitions=1)
            await reader.wait_until(lambda outputs, e=event_id: e in {o.record.get("id")
                                                                      for o in outputs},
                                    timeout_s=60, what=f"the result of {name}")  # fmt: skip
        for output in reader.outputs:
            records[str(output.record.get("id"))] = {**output.record, "topic": output.topic}
    return [records[event_id] for event_id in ids]


async def test_a_bad_entry_flooding_the_stream_is_quarantined_then_released(
    flooded: Flooded, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="modstream")
    topics = flooded.pipeline.settings.stream.topics
    first = await _results(flooded, [f"t{n}.jpg" for n in range(1, 8)])
    decisions = [(r["decision"], r["topic"], r["match"].get("quarantined")) for r in first]  # type: ignore[attr-defined]
    assert decisions[:LIMIT] == [("matched", topics.matched, None)] * LIMIT
    assert decisions[LIMIT:] == [("review", topics.review, True)] * (7 - LIMIT)
    for record in first:
        assert record["match"]["bank"] == "known" and record["match"]["id"] == "template"  # type: ignore[index]
    said = [r.getMessage() for r in caplog.records if "quarantined" in r.getMessage()]
    assert len(said) == 1 and "known entry template" in said[0], said
    metrics = flooded.pipeline.metrics.registry
    assert metrics.get_sample_value("modstream_bank_quarantined_total", {"bank": "known"}) == 1.0

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "modstream", "bank", "release", "known", flooded.entry,
        "--bank-topic", flooded.bank_topic, "--bootstrap-servers",
        flooded.broker.bootstrap_servers, cwd=locations.REPO, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    stream = flooded.pipeline.stream
    assert stream is not None and stream.moderator.matcher is not None
    matcher = stream.moderator.matcher
    await until(lambda: ("known", "template") in matcher.released, "the release on the topic")
    after = await _results(flooded, [f"t{n}.jpg" for n in range(8, IMAGES + 1)])
    assert [(r["decision"], r["topic"]) for r in after] == [("matched", topics.matched)] * len(
        after
    )
    assert all("quarantined" not in r["match"] for r in after)  # type: ignore[operator]
    released = [r.getMessage() for r in caplog.records
                if "released from flood quarantine" in r.getMessage()]  # fmt: skip
    assert len(released) == 1, released
