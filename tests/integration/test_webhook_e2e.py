"""The upload webhook through the real publisher: a 202 means the events are in Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from replicas.s3_events import minio_notification, s3_notification, s3_record

from modstream.connectors.checkpoints import MemoryCheckpoints
from modstream.connectors.publisher import PublisherConfig
from modstream.connectors.runner import run_connectors
from modstream.connectors.webhook.server import WebhookOptions, WebhookSource
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics, free_loopback_port
from modstream.kafka.settings import KafkaSettings

from .support import OutputReader

pytestmark = pytest.mark.asyncio(loop_scope="session")
SECRET = "test-secret-0123456789"


@asynccontextmanager
async def _webhook_connector(servers: str, topic: str, **options: object) -> AsyncIterator[str]:
    source = WebhookSource(
        WebhookOptions(port=0, object_base_url="http://objects.test", **options),  # type: ignore[arg-type]
        secret=SECRET,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_connectors(
            [source],
            kafka=KafkaSettings(bootstrap_servers=servers),
            config=PublisherConfig(topic=topic),
            checkpoints=MemoryCheckpoints(),
            stop=stop,
        )
    )
    try:
        async with asyncio.timeout(10):
            while source.statistics().connected is False:  # bound once entered
                assert not task.done(), task
                await asyncio.sleep(0.01)
        yield source.url
    finally:
        stop.set()
        async with asyncio.timeout(30):
            await task


async def _post(url: str, body: object) -> tuple[int, dict[str, object], dict[str, str]]:
    headers = {"Authorization": f"Bearer {SECRET}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v1/events", json=body, headers=headers) as response,
    ):
        return response.status, await response.json(), dict(response.headers)


async def test_a_202_means_every_event_is_already_on_the_topic(broker: EmbeddedBroker) -> None:
    """Right after the 202, reading the topic finds each accepted event (S3 and MinIO)."""
    topic = "webhook-e2e.incoming"
    await ensure_topics(broker.kafka, [TopicSpec(topic, 2)])
    async with _webhook_connector(broker.bootstrap_servers, topic) as url:
        s3 = s3_notification(
            s3_record("uploads", "red flower.jpg", sequencer="0A1"),  # sent as red+flower.jpg
            s3_record("uploads", "gone.jpg", event_name="ObjectRemoved:Delete"),
        )
        status, body, _ = await _post(url, s3)
        assert status == 202, body
        status_minio, body_minio, _ = await _post(url, minio_notification("uploads", "cat.png"))
        assert status_minio == 202, body_minio
        async with OutputReader(broker.bootstrap_servers, [topic]) as reader:
            await reader.read_to_end()
            urls = sorted(str(output.record["url"]) for output in reader.outputs)
    assert body["accepted"] == 1 and body["ignored"] == 1
    assert urls == [
        "http://objects.test/uploads/cat.png",
        "http://objects.test/uploads/red%20flower.jpg",
    ]


async def test_while_the_broker_is_away_the_webhook_answers_503(tmp_path: object) -> None:
    """No broker: the upload is not acknowledged, so the caller gets 503 and Retry-After."""
    servers = f"127.0.0.1:{free_loopback_port()}"
    async with _webhook_connector(servers, "nowhere.incoming", ack_timeout_s=1.0) as url:
        status, body, headers = await _post(url, {"url": "http://objects.test/a.jpg"})
    assert status == 503, body
    assert "Retry-After" in headers
    assert body["error"] == {"kind": "unavailable", "message": body["error"]["message"]}  # type: ignore[index]
