"""A three-node Apache Kafka cluster loses a node mid-stream: nothing is lost.

At least once: the node leading the first incoming partition is killed with SIGKILL while events
flow. The cluster elects new leaders from the in-sync replicas; the scorer's clients follow them
(and the group coordinator, if it moved), and every event still gets its output, and the group's
commits reach the end of the input. Exactly once: the node coordinating a partition's
transactions is killed; the coordinator moves to another node, the transactions it had open
are aborted and sent again, and a read_committed reader sees every event once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaClient, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import CoordinationType
from apache_kafka.cluster import KafkaCluster
from requirements import unavailable

from modstream.demo.imageserver import ImageServer
from modstream.kafka.broker import TopicSpec, ensure_topics
from modstream.kafka.producers import start_producer
from modstream.kafka.settings import Delivery, GroupTimings, KafkaSettings
from modstream.kafka.transactions import transactional_id
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.policy import Policy
from modstream.pipeline.moderate.step import ModerationSettings, open_moderator
from modstream.pipeline.score.scorer import ScorerConfig
from modstream.pipeline.stream.scoring import ScoringStream, StreamConfig

from .support import (
    Output,
    OutputReader,
    committed_offsets,
    end_offsets,
    unique_group,
    unique_topics,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

PARTITIONS = 4
EVENTS = 200
BATCH = 5  # events sent every 0.1 s
KILL_AFTER = 40  # outputs seen before the leader dies


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cluster(
    kafka_jars: str | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[KafkaCluster]:
    if kafka_jars is None:
        unavailable("KAFKA", "it needs java and mvn on PATH")
    async with KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"), kafka_jars) as started:
        yield started


@pytest_asyncio.fixture(loop_scope="session")
async def whole(cluster: KafkaCluster) -> KafkaCluster:
    """The cluster with every node up (a test before may have killed one)."""
    await asyncio.gather(*(node.start(timeout_s=120) for node in cluster.nodes.values()))
    return cluster


async def _leaders(kafka: KafkaSettings, topic: str) -> dict[int, int]:
    """partition -> the node leading it, as the cluster's metadata says."""
    admin = AIOKafkaAdminClient(**kafka.client_options("test"))
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return {p["partition"]: p["leader"] for p in described["partitions"]}


async def _transaction_coordinator(kafka: KafkaSettings, txn_id: str) -> int:
    """The node coordinating the transactions of ``txn_id``, as the cluster answers today."""
    client = AIOKafkaClient(**kafka.client_options("test"))
    await client.bootstrap()
    try:
        return int(await client.coordinator_lookup(CoordinationType.TRANSACTION, txn_id))
    finally:
        await client.close()


async def _stream_through(
    cluster: KafkaCluster,
    image_server: ImageServer,
    scorer_settings: ScorerConfig,
    config: StreamConfig,
    victim: Callable[[], Awaitable[int]],
    isolation: str = "read_uncommitted",
) -> tuple[list[Output], int]:
    """EVENTS events through a scorer in this process; once KILL_AFTER outputs are read,
    ``victim()`` names the node to SIGKILL. The outputs read once every event has one, and the
    node killed."""
    assert image_server.served is not None
    kafka, topics = cluster.kafka, config.topics
    specs = [TopicSpec(name, PARTITIONS) for name in (topics.incoming, *topics.outputs())]
    await ensure_topics(kafka, specs, replication_factor=3)
    images = image_server.served.image_urls()
    values = [
        orjson.dumps({"id": f"e{n}", "url": f"{images[n % len(images)]}?n={n}"})
        for n in range(EVENTS)
    ]
    moderation = ModerationSettings(
        scorer=scorer_settings,
        policy=Policy(name="t", flag_at=0.8, review_at=0.3),
        fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"])),
        cache=CacheConfig(max_entries=0),
    )
    feeder = await start_producer(kafka, role="test-feed", linger_ms=5)
    assert feeder.idempotent

    async def feed() -> None:
        for start in range(0, EVENTS, BATCH):
            sends = [
                await feeder.producer.send(topics.incoming, value, partition=n % PARTITIONS)
                for n, value in enumerate(values[start : start + BATCH], start)
            ]
            await asyncio.gather(*sends)
            await asyncio.sleep(0.1)

    stop, ready = asyncio.Event(), asyncio.Event()
    async with (
        open_moderator(moderation) as moderator,
        OutputReader(kafka.bootstrap_servers, topics.outputs(), isolation=isolation) as reader,
    ):
        stream = ScoringStream(config, kafka, moderator, PipelineMetrics())
        running = asyncio.create_task(stream.run(stop, ready))
        await asyncio.wait_for(ready.wait(), 60)
        feeding = asyncio.create_task(feed())
        try:
            await reader.wait_until(
                lambda o: len(o) >= KILL_AFTER, timeout_s=60, what="the first outputs"
            )
            killed = await victim()
            await cluster.nodes[killed].kill()
            await asyncio.wait_for(feeding, 120)
            await reader.wait_until(
                lambda o: len({x.record["id"] for x in o}) >= EVENTS, timeout_s=120,
                what="an output for every event",
            )  # fmt: skip
        finally:
            stop.set()
            await asyncio.wait_for(running, 60)
            await feeder.producer.stop()
        await reader.read_to_end()
        return list(reader.outputs), killed


async def test_a_partition_leader_killed_mid_stream_loses_no_event(
    whole: KafkaCluster, image_server: ImageServer, scorer_settings: ScorerConfig
) -> None:
    """SIGKILL the node leading partition 0 mid-stream: leadership moves to another replica,
    every event gets an output, and the commits reach the end of every partition."""
    kafka, topics, group = whole.kafka, unique_topics("leader"), unique_group("leader")
    config = StreamConfig(
        topics=topics, group_id=group, timings=GroupTimings(session_timeout_s=6.0)
    )

    async def leader() -> int:
        return (await _leaders(kafka, topics.incoming))[0]

    outputs, victim = await _stream_through(whole, image_server, scorer_settings, config, leader)
    survivors = await _leaders(kafka, topics.incoming)
    ends = await end_offsets(kafka.bootstrap_servers, topics.incoming)
    committed = await committed_offsets(kafka.bootstrap_servers, group, topics.incoming, ends)

    assert survivors[0] != victim and victim not in survivors.values()
    counts = Counter(output.record["id"] for output in outputs)
    assert set(counts) == {f"e{n}" for n in range(EVENTS)}, "an event has no output"
    repeated = sum(count - 1 for count in counts.values())
    # Repeats happen only where a commit was lost with the coordinator: at most what was in flight.
    assert repeated <= config.max_in_flight, f"{repeated} repeated outputs"
    assert committed == ends
    print(f"leader change: node {victim} killed; {repeated} outputs repeated of {EVENTS}")


async def test_the_transaction_coordinator_killed_mid_stream_every_event_once(
    whole: KafkaCluster, image_server: ImageServer, scorer_settings: ScorerConfig
) -> None:
    """Exactly once: SIGKILL the node coordinating partition 0's transactions mid-stream; its
    transactions' coordinator moves to another node (the transaction state log's replicas), the
    ones it had open are aborted and their outputs sent again, and a read_committed reader sees
    every event once, the scorer never stopping."""
    kafka, topics, group = whole.kafka, unique_topics("coordinator"), unique_group("coordinator")
    config = StreamConfig(
        topics=topics, group_id=group, timings=GroupTimings(session_timeout_s=6.0),
        delivery=Delivery.EXACTLY_ONCE,
    )  # fmt: skip
    txn_id = transactional_id(group, TopicPartition(topics.incoming, 0))

    async def coordinator() -> int:
        return await _transaction_coordinator(kafka, txn_id)

    outputs, victim = await _stream_through(
        whole, image_server, scorer_settings, config, coordinator, isolation="read_committed"
    )
    moved = await _transaction_coordinator(kafka, txn_id)
    counts = Counter(output.record["id"] for output in outputs)
    print(f"\ntransaction coordinator moved from node {victim} to {moved}; "
          f"{sum(counts.values())} committed outputs for {EVENTS} events")  # fmt: skip
    assert moved != victim
    assert set(counts) == {f"e{n}" for n in range(EVENTS)}, "an event has no output"
    assert {event: n for event, n in counts.items() if n > 1} == {}
