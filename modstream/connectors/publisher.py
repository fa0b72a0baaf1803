"""Move a connector's events into ``images.incoming`` (acks=all, keyed by event id)."""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaProducer

from modstream.connectors.base import Source

log = logging.getLogger("modstream.connector")


async def publish_events(source: Source, bootstrap_servers: str, topic: str) -> int:
    """Publish every event of ``source``; return how many were acknowledged."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        linger_ms=0,
        client_id="modstream-connector",
    )
    await producer.start()
    sent = 0
    try:
        async for event in source.events():
            await producer.send_and_wait(topic, value=event.encode(), key=event.id.encode())
            sent += 1
    finally:
        await producer.stop()
    log.info("connector %s published %d events to %s", source.name, sent, topic)
    return sent
