"""Group-less reading (``kafka.reading``) against a real embedded broker: every record there was
when a read started, a missing topic or an absent cluster named, and following new records."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from modstream.errors import BrokerUnavailable, ConfigError
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics, free_loopback_port
from modstream.kafka.reading import read_topic, read_topics
from modstream.kafka.settings import KafkaSettings

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def broker() -> AsyncIterator[EmbeddedBroker]:
    async with EmbeddedBroker() as started:
        yield started


async def _topic(broker: EmbeddedBroker, partitions: int = 1) -> str:
    name = f"reading-{uuid.uuid4().hex[:10]}"
    await ensure_topics(broker.kafka, [TopicSpec(name, partitions)])
    return name


async def _send_batch(broker: EmbeddedBroker, topic: str, values: list[bytes]) -> None:
    """``values`` as one record batch on partition 0 (as a producer lingering for them sends)."""
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
    await producer.start()
    try:
        batch = producer.create_batch()
        for value in values:
            assert batch.append(key=None, value=value, timestamp=None) is not None
        batch.close()
        await (await producer.send_batch(batch, topic, partition=0))
    finally:
        await producer.stop()


async def test_a_read_returns_every_record_of_the_last_batch(broker: EmbeddedBroker) -> None:
    """Records of a partition's last batch are all read, although the embedded broker reports
    the partition's end as that batch's first offset plus one."""
    topic = await _topic(broker)
    await _send_batch(broker, topic, [b"a"])
    await _send_batch(broker, topic, [b"b", b"c", b"d"])
    assert [value async for value in read_topic(broker.kafka, topic)] == [b"a", b"b", b"c", b"d"]


async def test_several_topics_are_read_with_their_names(broker: EmbeddedBroker) -> None:
    """``read_topics`` gives each record with the topic it came from, and ends by itself."""
    first, second = await _topic(broker), await _topic(broker, partitions=3)
    await _send_batch(broker, first, [b"1"])
    await _send_batch(broker, second, [b"2", b"3"])
    read = sorted([item async for item in read_topics(broker.kafka, [first, second])])
    assert read == sorted([(first, b"1"), (second, b"2"), (second, b"3")])


async def test_a_missing_topic_is_named_with_the_cluster(broker: EmbeddedBroker) -> None:
    """Reading a topic the cluster does not have fails before reading, naming both."""
    present = await _topic(broker)
    with pytest.raises(ConfigError) as raised:
        async for _item in read_topics(broker.kafka, [present, "no-such-topic"]):
            pass
    assert type(raised.value) is ConfigError
    assert str(raised.value) == f"topic no-such-topic does not exist on {broker.bootstrap_servers}"


async def test_a_cluster_nothing_answers_on_is_broker_unavailable() -> None:
    """No broker on the address: a typed, retriable ``broker_unavailable``, not a client hang."""
    nowhere = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_loopback_port()}")
    with pytest.raises(BrokerUnavailable) as raised:
        async for _item in read_topics(nowhere, ["images.flagged"]):
            pass
    assert raised.value.kind == "broker_unavailable" and raised.value.retriable


async def test_following_yields_what_was_there_then_what_arrives(broker: EmbeddedBroker) -> None:
    """With ``follow`` the read goes on: a record produced after the start is yielded too."""
    topic = await _topic(broker)
    await _send_batch(broker, topic, [b"before"])
    reader = read_topics(broker.kafka, [topic], follow=True)
    try:
        assert await asyncio.wait_for(anext(reader), 20) == (topic, b"before")
        await _send_batch(broker, topic, [b"after"])
        assert await asyncio.wait_for(anext(reader), 20) == (topic, b"after")
    finally:
        await reader.aclose()
