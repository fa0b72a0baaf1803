"""The scoring stream as a step, with no broker: what each consumed record becomes, the bound on
records in flight, and a revoked partition's records (finished in time, or handed over).

A real scorer and a real fetcher on loopback; the group sink around the step is built but never
started, so it holds the offsets and nothing is published.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator

import orjson
import pytest
import pytest_asyncio

from modstream.demo.imageserver import ImageServer
from modstream.kafka.settings import KafkaSettings
from modstream.kafka.sink import GroupSink, Partition
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.fetch.fetcher import Fetcher
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.moderate.policy import DEFAULT_POLICY, PRESETS
from modstream.pipeline.score.scorer import Scorer
from modstream.pipeline.stream.records import Origin
from modstream.pipeline.stream.scoring import ScoringStream, StreamConfig
from modstream.pipeline.stream.topics import Topics

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOWHERE = KafkaSettings(bootstrap_servers="127.0.0.1:9")  # never contacted
TOPICS = Topics.with_prefix("unit")


@pytest_asyncio.fixture(loop_scope="session")
async def served() -> AsyncIterator[ImageServer]:
    async with ImageServer() as server:
        yield server


def _stream(scorer: Scorer, fetcher: Fetcher | None, **config: object) -> ScoringStream:
    moderator = Moderator(scorer, PRESETS[DEFAULT_POLICY], fetcher=fetcher)
    settings = StreamConfig(topics=TOPICS, **config)  # type: ignore[arg-type]
    return ScoringStream(settings, NOWHERE, moderator, PipelineMetrics(), wall_clock=lambda: 1e9)


def _origin(value: bytes | None, offset: int = 7) -> Origin:
    return Origin(topic=TOPICS.incoming, partition=0, offset=offset, raw=value)


def _event(url: str) -> bytes:
    return orjson.dumps({"id": "e1", "url": url, "source": "unit", "observed_at": 1e9 - 0.5})


async def test_each_record_becomes_one_output_on_the_topic_its_outcome_names(
    exact_scorer: Scorer, served: ImageServer
) -> None:
    """A scored image goes to its decision's topic with its score; a record that is not an event,
    an address the guard refuses, and a failure of our own each go to the errors topic, with the
    kind that says why (and a non-event's raw bytes, partition and offset)."""
    assert served.served is not None
    image = served.served.image_urls()[0]
    allowed = FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]))
    async with Fetcher(allowed) as fetcher, Fetcher(FetchConfig()) as guarded:
        topic, scored = await _stream(exact_scorer, fetcher)._outcome(_origin(_event(image)))
        assert topic in (TOPICS.flagged, TOPICS.review, TOPICS.safe)
        assert topic == TOPICS.for_decision(PRESETS[DEFAULT_POLICY].decide(scored["nsfw"]))
        assert (scored["id"], scored["url"], scored["published_at"]) == ("e1", image, 1e9)

        topic, malformed = await _stream(exact_scorer, fetcher)._outcome(_origin(b"[1, 2]"))
        assert topic == TOPICS.errors and malformed["error"]["kind"] == "malformed_record"
        assert base64.b64decode(malformed["raw"]) == b"[1, 2]"
        assert (malformed["source_topic"], malformed["offset"]) == (TOPICS.incoming, 7)

        topic, blocked = await _stream(exact_scorer, guarded)._outcome(_origin(_event(image)))
        assert topic == TOPICS.errors and blocked["error"]["kind"] == "blocked_address"
        assert blocked["id"] == "e1"  # an event: its fields, not its raw bytes

    topic, internal = await _stream(exact_scorer, None)._outcome(_origin(_event(image)))
    assert topic == TOPICS.errors and internal["error"]["kind"] == "internal"
    assert "RuntimeError" in internal["error"]["message"]


async def test_the_step_has_room_for_max_in_flight_records_and_no_more(
    exact_scorer: Scorer, served: ImageServer
) -> None:
    """Each record taken is a task until its output is published; at max_in_flight the step has
    no room, which is what pauses the consumer."""
    assert served.served is not None
    slow = f"{served.served.base_url}/bad/slow"  # one byte a second
    allowed = FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=60)
    async with Fetcher(allowed) as fetcher:
        stream = _stream(exact_scorer, fetcher, max_in_flight=3, revoke_timeout_s=0.1)
        sink = GroupSink(NOWHERE, stream.config.consumer(), stream)
        stream._sink = sink
        assert (stream.capacity, stream.room()) == (3, 3)
        partition = Partition(TOPICS.incoming, 0)
        for offset in range(3):
            sink.take(partition, offset, _event(f"{slow}?n={offset}"))
        assert stream.room() == 0 and sink.in_flight == 3
        assert stream.statistics().peak_tasks == 3
        await stream.revoked({partition})  # cancels what is left: the next owner replays it
        assert stream.room() == 3


async def test_a_revoked_partition_waits_for_its_records_then_hands_the_late_ones_over(
    exact_scorer: Scorer, served: ImageServer
) -> None:
    """On revocation the leaving partition's records get revoke_timeout_s to finish; the one still
    fetching after that is cancelled and counted as handed over, and the records of the
    partition that stays are left running."""
    assert served.served is not None
    slow = f"{served.served.base_url}/bad/slow"  # one byte a second
    allowed = FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=60)
    async with Fetcher(allowed) as fetcher:
        stream = _stream(exact_scorer, fetcher, revoke_timeout_s=0.3)
        sink = GroupSink(NOWHERE, stream.config.consumer(), stream)
        stream._sink = sink
        leaving, staying = Partition(TOPICS.incoming, 0), Partition(TOPICS.incoming, 1)
        sink.take(leaving, 0, _event(f"{slow}?n=0"))
        sink.take(staying, 0, _event(f"{slow}?n=1"))
        started = time.monotonic()
        await stream.revoked({leaving})
        waited = time.monotonic() - started
        stats = stream.statistics()
        assert 0.3 <= waited < 5.0
        assert (stats.revocations, stats.handed_over, stats.tasks) == (1, 1, 1)
        await stream.revoked({staying})
        assert stream.statistics().tasks == 0
        await asyncio.sleep(0)
