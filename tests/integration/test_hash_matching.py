"""Known-content matching end to end: a real broker, real HTTP on loopback, real OpenVINO.

One pipeline per broker runs with a bank file and the bank topic; each test sends its own images
(copies of the PDQ sample photograph, each turned a different way so their hashes are far apart)
and checks where their results land: copies of banked images on ``images.matched`` and nowhere
else, a bank entry added to the topic while the stream runs applying to the next image, and a
reviewer's ``nsfw`` decision making the next copy of that image a match.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import imagegen
import locations
import orjson
import pytest
import pytest_asyncio
from PIL import Image
from polling import until

from modstream.backoff import BackoffPolicy
from modstream.demo.imageserver import ImageServer
from modstream.kafka.publish import Publisher
from modstream.models.decode import DecodeLimits
from modstream.models.preprocess import hash_image
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.fetcher import FetchConfig
from modstream.pipeline.match.banks import BankSettings
from modstream.pipeline.match.matcher import Matcher
from modstream.pipeline.match.records import bank_record
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.policy import Policy
from modstream.pipeline.moderate.step import ModerationSettings
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.pipeline.stream.scoring import StreamConfig
from modstream.pipeline.stream.service import Pipeline, PipelineSettings
from modstream.pipeline.stream.topics import Topics
from modstream.review.service import ReviewService, ReviewSettings

from .conftest import Broker
from .support import (
    Output,
    OutputReader,
    default_timings,
    embedded_timings,
    produce,
    scorer_ready,
    unique_group,
    unique_topics,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# Everything not matched goes to review, so the reviewer has the images of the last test.
POLICY = Policy(name="t", flag_at=0.8, review_at=0.0)
PHOTO = Image.open(locations.PDQ / "bridge.jpg").convert("RGB")
LIMITS = DecodeLimits()


def _jpeg(image: Image.Image, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _half(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2))


def _images() -> dict[str, bytes]:
    flipped = PHOTO.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    mirrored = PHOTO.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    images = {
        "original.jpg": _jpeg(PHOTO, 95),
        "copy-half.jpg": _jpeg(_half(PHOTO)),
        "copy-q40.jpg": _jpeg(PHOTO, 40),
        "flipped.jpg": _jpeg(flipped, 95),
        "flipped-copy.jpg": _jpeg(_half(flipped), 60),
        "mirrored.jpg": _jpeg(mirrored, 95),
        "mirrored-copy.jpg": _jpeg(mirrored, 50),
        "ladder.png": (locations.LADDER / "syn_12_4.png").read_bytes(),
    }
    for seed in range(4):
        pixels = imagegen.photo_like(640, 480, seed=seed)
        images[f"unrelated-{seed}.jpg"] = _jpeg(Image.fromarray(pixels))
    return images


@dataclass
class Running:
    broker: Broker
    topics: Topics
    bank_topic: str
    server: ImageServer
    pipeline: Pipeline
    sent: int = 0

    @property
    def matcher(self) -> Matcher:
        assert self.pipeline.stream is not None
        matcher = self.pipeline.stream.moderator.matcher
        assert matcher is not None
        return matcher

    async def moderate(self, *names: str) -> dict[str, Output]:
        """Send an event per image name (a URL of its own each time) and wait for the result of
        each: the output of every one, by image name."""
        ids = {f"hm-{self.sent + n}-{uuid.uuid4().hex[:6]}": name for n, name in enumerate(names)}
        self.sent += len(names)
        base = self.server.served.base_url
        events = [_event(event_id, f"{base}/img/{name}?{event_id}")
                  for event_id, name in ids.items()]  # fmt: skip
        await produce(self.broker.bootstrap_servers, self.topics.incoming, events, partitions=2)
        async with OutputReader(self.broker.bootstrap_servers, self.topics.outputs()) as reader:
            await reader.wait_until(
                lambda outputs: ids.keys() <= {o.record.get("id") for o in outputs},
                timeout_s=60, what=f"the results of {', '.join(names)}",
            )  # fmt: skip
            await reader.read_to_end()
            found = [o for o in reader.outputs if o.record.get("id") in ids]
        assert len(found) == len(ids), "one result per event, no more"
        return {ids[o.record["id"]]: o for o in found}


def _event(event_id: str, url: str) -> bytes:
    return orjson.dumps({"id": event_id, "url": url, "source": "test", "observed_at": time.time()})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def running(
    any_broker: Broker, scorer_settings: ScorerConfig, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Running]:
    images = _images()
    bank = tmp_path_factory.mktemp("banks") / "known.txt"
    original = hash_image(images["original.jpg"], LIMITS).pdq
    bank.write_text(f"# the sample photograph\n{original.hex}, case-1\n")
    topics = unique_topics("match")
    bank_topic = f"{topics.incoming.removesuffix('.incoming')}.banks"
    settings = PipelineSettings(
        kafka=any_broker.kafka,
        partitions=2,
        moderation=ModerationSettings(
            policy=POLICY,
            scorer=scorer_settings,
            fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=5.0),
            cache=CacheConfig(max_entries=0),
            banks=(BankSettings(name="known", path=bank),),
            live_banks=True,
        ),
        stream=StreamConfig(topics=topics, group_id=unique_group("match")),
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
            yield Running(any_broker, topics, bank_topic, server, pipeline)
        finally:
            stop.set()
            await asyncio.wait_for(scorer, 40)


async def test_copies_of_a_banked_image_land_on_matched_and_nowhere_else(
    running: Running,
) -> None:
    """Resized and re-encoded copies of the banked photograph are decided 'matched', with the
    bank, the id and the distance, on images.matched only; unrelated images are not matched."""
    results = await running.moderate(
        "copy-half.jpg", "copy-q40.jpg", "ladder.png", *(f"unrelated-{n}.jpg" for n in range(4))
    )
    for name in ("copy-half.jpg", "copy-q40.jpg"):
        output = results[name]
        assert output.topic == running.topics.matched, name
        record = output.record
        assert record["decision"] == "matched"
        assert (record["match"]["bank"], record["match"]["id"]) == ("known", "case-1")
        assert record["match"]["distance"] <= 31 and record["pdq_quality"] >= 50
    for name, output in results.items():
        assert len(output.record["pdq"]) == 64
        if name.startswith(("ladder", "unrelated")):
            assert output.topic != running.topics.matched and "match" not in output.record, name


async def test_a_bank_entry_added_to_the_topic_applies_to_the_next_images(
    running: Running,
) -> None:
    """An image the banks do not know is reviewed; once its hash is on the bank topic, the
    next copy of it is matched with the topic's bank and id."""
    before = await running.moderate("flipped.jpg")
    assert before["flipped.jpg"].topic == running.topics.review
    pdq = hash_image(_images()["flipped.jpg"], LIMITS).pdq
    retry = BackoffPolicy(initial_s=0.25, max_s=1.0)
    async with Publisher(running.broker.kafka, role="test", linger_ms=0, retry=retry) as publisher:
        records = [bank_record("shared", pdq.bits, "tx-9", source="test")]
        await publisher.send_all(running.bank_topic, records)
    await until(lambda: running.matcher.size("shared") == 1, "the bank topic's entry")
    after = (await running.moderate("flipped-copy.jpg"))["flipped-copy.jpg"]
    assert after.topic == running.topics.matched
    assert (after.record["match"]["bank"], after.record["match"]["id"]) == ("shared", "tx-9")


async def test_a_reviewers_nsfw_decision_makes_the_next_copy_a_match(running: Running) -> None:
    """The console banks the hash of an image judged nsfw (--bank-decisions): the scorers
    following the bank topic match the next copy of it, with the image's sha256 as the id."""
    first = (await running.moderate("mirrored.jpg"))["mirrored.jpg"]
    assert first.topic == running.topics.review
    decided = await _judge(running, running.topics.review, first.record["id"], "nsfw")
    assert decided["banked"] == {"bank": "reviewed", "pdq": first.record["pdq"]}
    await until(lambda: running.matcher.size("reviewed") == 1, "the reviewer's bank entry")
    after = (await running.moderate("mirrored-copy.jpg"))["mirrored-copy.jpg"]
    assert after.topic == running.topics.matched
    assert after.record["match"]["bank"] == "reviewed"
    assert after.record["match"]["id"] == first.record["sha256"]


async def _judge(running: Running, topic: str, item_id: str, label: str) -> dict[str, Any]:
    """A review console on ``topic`` that banks nsfw decisions: judge one item, return what
    it stored."""
    settings = ReviewSettings(
        kafka=running.broker.kafka, topics=(topic,), reviewed_topic=f"{topic}.reviewed",
        group_id=unique_group("match-review"),
        timings=embedded_timings(default_timings(ReviewSettings)),
        bank_decisions="reviewed", bank_topic=running.bank_topic,
    )  # fmt: skip
    stop = asyncio.Event()
    async with ReviewService(settings) as service:
        task = asyncio.create_task(service.run(stop))
        try:
            await until(lambda: item_id in _pending_ids(service), f"item {item_id}", timeout_s=30)
            return await service.decide(item_id, label, "alice")
        finally:
            stop.set()
            await asyncio.wait_for(task, 20)


def _pending_ids(service: ReviewService) -> set[Any]:
    return {item["id"] for item in service.next_items("probe", 1000)}


async def test_a_safe_decision_on_a_matched_image_is_recorded_as_a_dispute(
    running: Running,
) -> None:
    """A console queueing images.matched lets people confirm matches; judging one safe
    records a dispute naming the bank and entry, and banks nothing."""
    matched = (await running.moderate("copy-half.jpg"))["copy-half.jpg"]
    assert matched.topic == running.topics.matched
    decided = await _judge(running, running.topics.matched, matched.record["id"], "safe")
    assert decided["dispute"] == {"bank": "known", "id": "case-1"}
    assert "banked" not in decided
