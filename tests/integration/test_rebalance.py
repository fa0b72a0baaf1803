"""A consumer-group rebalance under load drops nothing and repeats nothing.

While events flow, a second scorer joins the group (partitions move to it) and later leaves
(they move back). A revoked partition's in-flight records are finished and committed before it
moves, so no event is lost, none is scored twice, and the group's commits end exactly at the
end of the input. Runs on the embedded broker and on Apache Kafka.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import orjson
import pytest
from polling import until

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics
from modstream.kafka.settings import GroupTimings
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.policy import Policy
from modstream.pipeline.moderate.step import ModerationSettings, open_moderator
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.pipeline.stream.scoring import ScoringStream, StreamConfig

from .conftest import Broker
from .support import (
    OutputReader,
    committed_offsets,
    end_offsets,
    produce,
    unique_group,
    unique_topics,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARTITIONS = 4
EVENTS = 240
BATCH = 8  # events sent at a time, every 0.1 s: about 80 a second, more than one scorer takes
JOIN_AFTER = 40  # outputs seen before the second scorer joins
LEAVE_AFTER = 30  # outputs the second scorer publishes before it leaves


async def _until(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    await until(condition, what, timeout_s=timeout_s)


def _lag_partitions(metrics: PipelineMetrics) -> list[str]:
    return [
        sample.labels["partition"]
        for family in metrics.registry.collect()
        if family.name == "modstream_consumer_lag"
        for sample in family.samples
    ]


async def test_a_scorer_joining_and_leaving_under_load_loses_and_repeats_nothing(
    any_broker: Broker, image_server: ImageServer, scorer_settings: ScorerConfig
) -> None:
    """Join, then leave, mid-stream: every event has exactly one output, and the committed
    offsets reach the end of every partition."""
    assert image_server.served is not None
    topics = unique_topics("rebalance")
    group = unique_group("rebalance")
    kafka = any_broker.kafka
    await ensure_topics(
        kafka, [TopicSpec(name, PARTITIONS) for name in (topics.incoming, *topics.outputs())]
    )
    config = StreamConfig(
        topics=topics,
        group_id=group,
        # tansu makes each join wait about half the session timeout, so it gets a short one
        timings=GroupTimings(
            session_timeout_s=2.0 if isinstance(any_broker, EmbeddedBroker) else 6.0
        ),
        max_in_flight=32,
    )
    moderation = ModerationSettings(
        scorer=scorer_settings,
        policy=Policy(name="t", flag_at=0.8, review_at=0.3),
        fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"])),
        cache=CacheConfig(max_entries=0),  # every event is a real fetch and inference
    )
    images = image_server.served.image_urls()
    values = [
        orjson.dumps({"id": f"e{n}", "url": f"{images[n % len(images)]}?n={n}"})
        for n in range(EVENTS)
    ]

    async def feed() -> None:
        for start in range(0, EVENTS, BATCH):
            await produce(
                kafka.bootstrap_servers, topics.incoming, values[start : start + BATCH],
                partitions=PARTITIONS,
            )  # fmt: skip
            await asyncio.sleep(0.1)

    stop_a, stop_b = asyncio.Event(), asyncio.Event()
    ready_a, ready_b = asyncio.Event(), asyncio.Event()
    async with (
        open_moderator(moderation) as moderator,
        OutputReader(kafka.bootstrap_servers, topics.outputs()) as reader,
    ):
        metrics_a, metrics_b = PipelineMetrics(), PipelineMetrics()
        first = ScoringStream(config, kafka, moderator, metrics_a)
        second = ScoringStream(config, kafka, moderator, metrics_b)
        task_a = asyncio.create_task(first.run(stop_a, ready_a))
        await asyncio.wait_for(ready_a.wait(), 60)
        feeder = asyncio.create_task(feed())
        await reader.wait_until(lambda o: len(o) >= JOIN_AFTER, timeout_s=60, what="first outputs")
        task_b = asyncio.create_task(second.run(stop_b, ready_b))
        await _until(
            lambda: sum(second.published.values()) >= LEAVE_AFTER, "the second scorer to work"
        )
        # Each partition's lag is reported by its owner only: the first scorer stops reporting
        # the partitions it gave up, so the group's summed lag counts nothing twice.
        await _until(
            lambda: (
                sorted(_lag_partitions(metrics_a) + _lag_partitions(metrics_b))
                == [str(n) for n in range(PARTITIONS)]
            ),
            "each partition's lag reported once",
            timeout_s=20,
        )
        stop_b.set()
        await asyncio.wait_for(task_b, 60)
        # The second scorer's leave moves its partitions back: wait for that rebalance, which
        # may come after the last event when the second scorer had answered its share already.
        await _until(
            lambda: first.statistics().revocations >= 2, "the first scorer to take them back",
            timeout_s=30,
        )  # fmt: skip
        await asyncio.wait_for(feeder, 60)
        await reader.wait_until(
            lambda o: len({x.record["id"] for x in o}) >= EVENTS, timeout_s=120,
            what="an output for every event",
        )  # fmt: skip
        stop_a.set()
        await asyncio.wait_for(task_a, 60)
        await reader.read_to_end()
        outputs = list(reader.outputs)

    counts = Counter(output.record["id"] for output in outputs)
    assert set(counts) == {f"e{n}" for n in range(EVENTS)}, "an event has no output"
    repeated = {event: count for event, count in counts.items() if count > 1}
    assert not repeated, f"scored more than once across the rebalances: {repeated}"
    a, b = first.statistics(), second.statistics()
    assert sum(b.published.values()) >= LEAVE_AFTER
    assert sum(a.published.values()) + sum(b.published.values()) == EVENTS
    assert a.revocations >= 2, "the first scorer should have given up partitions twice"
    assert a.handed_over == b.handed_over == 0
    ends = await end_offsets(kafka.bootstrap_servers, topics.incoming)
    committed = await committed_offsets(kafka.bootstrap_servers, group, topics.incoming, ends)
    assert committed == ends
