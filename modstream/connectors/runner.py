"""Run a process's connectors: open every source, then publish them all through one producer.

Readiness first: every source is entered (bound, connected, or refused with a clear error)
before anything is published, so a webhook port in use or a refused token fails the run at once.
Each source then resumes from its checkpoint only if the incoming topic still has the events
the checkpoint counts (:mod:`.resume`). The sources run side by side in a task group: one that
fails stops the others. Shutdown:
each publisher drains and saves its position, then the producer flushes and stops, then the
sources close.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence

from modstream.backoff import Backoff, BackoffPolicy, Stopped, is_retriable, retry
from modstream.connectors.base import Source
from modstream.connectors.checkpoints import CheckpointStore
from modstream.connectors.metrics import ConnectorMetrics
from modstream.connectors.publisher import PublisherConfig, SourcePublisher
from modstream.kafka.ends import TopicEnds
from modstream.kafka.outage import broker_watch
from modstream.kafka.publish import Publisher
from modstream.kafka.settings import KafkaSettings

__all__ = ["run_connectors"]

log = logging.getLogger("modstream.connector")


async def run_connectors(
    sources: Sequence[Source],
    *,
    kafka: KafkaSettings,
    config: PublisherConfig,
    checkpoints: CheckpointStore,
    stop: asyncio.Event,
    metrics: ConnectorMetrics | None = None,
) -> None:
    """Publish every source until all are exhausted or ``stop`` is set."""
    async with contextlib.AsyncExitStack() as stack:
        for source in sources:
            await stack.enter_async_context(source)
        watch = await stack.enter_async_context(broker_watch(kafka))
        producer = Publisher(kafka, role="connector", linger_ms=5, retry=config.backoff)
        if not await _start(producer, kafka, stop):
            return
        stack.push_async_callback(_stop, producer)
        ends = await stack.enter_async_context(TopicEnds(kafka, config.topic))
        publishers = [
            SourcePublisher(source, producer, checkpoints, config, ends, watch=watch)
            for source in sources
        ]
        if metrics is not None:
            for publisher in publishers:
                metrics.track(publisher)
        async with asyncio.TaskGroup() as group:
            for publisher in publishers:
                group.create_task(publisher.run(stop), name=f"publish-{publisher.source.name}")


async def _start(publisher: Publisher, kafka: KafkaSettings, stop: asyncio.Event) -> bool:
    """Start the producer, retrying while the broker is unreachable; False if stopped first."""

    def failed(exc: BaseException, delay: float) -> None:
        log.warning("cannot reach the broker at %s (%s); retrying in %.1f s",
                    kafka.bootstrap_servers, exc, delay)  # fmt: skip

    try:
        await retry(
            publisher.start,
            retriable=is_retriable,
            backoff=Backoff(BackoffPolicy(initial_s=0.25, max_s=5.0)),
            stop=stop,
            on_retry=failed,
        )
    except Stopped:
        return False
    return True


async def _stop(publisher: Publisher) -> None:
    await asyncio.shield(publisher.stop())
