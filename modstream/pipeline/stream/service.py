"""Assemble a running pipeline: broker (embedded or real), topics, metrics endpoint, scorer stage.

``modstream run`` and ``modstream demo`` both build on :class:`Pipeline`. Start-up order is the
readiness handshake: broker reachable and our credentials accepted -> topics exist -> model
compiled -> producer up -> consumer joins the group. Shutdown runs the other way round
(:class:`contextlib.AsyncExitStack`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from threading import Thread
from typing import Self
from wsgiref.simple_server import WSGIServer

from modstream.errors import PortInUse
from modstream.kafka.access import check_access
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics
from modstream.kafka.settings import KafkaSettings
from modstream.pipeline.fetch.fetcher import FetchConfig, Fetcher
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.policy import PRESETS, Policy
from modstream.pipeline.score.scorer import Scorer, ScorerConfig
from modstream.pipeline.stream.scoring import ScoringStream, StreamConfig, Topics

log = logging.getLogger("modstream.service")
# Something that runs beside a scoring stream, e.g. the HTTP API on the stream's moderator.
Attachment = Callable[[ScoringStream], contextlib.AbstractAsyncContextManager[object]]
KAFKA_SESSION_TIMEOUT_MS = 10_000
EMBEDDED_SESSION_TIMEOUT_MS = 2_000
# Kafka answers a waiting fetch as soon as a record arrives; the embedded broker waits out most of
# fetch_max_wait_ms, so there the wait is kept short (it costs the broker some CPU instead).
KAFKA_FETCH_MAX_WAIT_MS = 500
EMBEDDED_FETCH_MAX_WAIT_MS = 20


@dataclass(frozen=True, kw_only=True, slots=True)
class PipelineSettings:
    kafka: KafkaSettings | None = None  # None: start the embedded development broker
    topics: Topics = field(default_factory=Topics)
    partitions: int = 4
    replication_factor: int = 1
    group_id: str = "modstream-scorers"
    policy: Policy = field(default_factory=lambda: PRESETS["balanced"])
    scorer: ScorerConfig = field(default_factory=ScorerConfig)
    fetch: FetchConfig = field(default_factory=FetchConfig)
    max_in_flight: int = 64
    metrics_port: int | None = 9108
    metrics_host: str = "0.0.0.0"
    log_interval_s: float = 10.0
    # Kafka's usual 10 s; the embedded broker makes every join wait about half of it, so a
    # development pipeline uses 2 s (see README, "Embedded broker").
    session_timeout_ms: int | None = None
    fetch_max_wait_ms: int | None = None
    cache: CacheConfig = field(default_factory=CacheConfig)


class Pipeline:
    def __init__(self, settings: PipelineSettings, metrics: PipelineMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or PipelineMetrics()
        self.stream: ScoringStream | None = None
        self._stack = contextlib.AsyncExitStack()
        self._kafka = settings.kafka
        self._embedded = settings.kafka is None

    @property
    def kafka(self) -> KafkaSettings:
        """How every client of this pipeline reaches the cluster (the embedded one once started)."""
        if self._kafka is None:
            raise RuntimeError("the pipeline is not started")
        return self._kafka

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka.bootstrap_servers

    @property
    def broker_description(self) -> str:
        """Which broker this is, for a person: "embedded broker at ..." or "Kafka at ..."."""
        kind = "embedded development broker" if self._embedded else "Kafka"
        return f"{kind} at {self.bootstrap_servers} (topics {self.settings.topics.incoming}...)"

    async def __aenter__(self) -> Self:
        try:
            if self._kafka is None:
                broker = await self._stack.enter_async_context(EmbeddedBroker())
                self._kafka = broker.kafka
            await check_access(self._kafka)
            await self._ensure_topics()
            if self.settings.metrics_port is not None:
                server, _thread = self._serve_metrics()
                self._stack.callback(server.shutdown)
                log.info("metrics on http://%s:%d/metrics", self.settings.metrics_host,
                         self.settings.metrics_port)  # fmt: skip
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    def _serve_metrics(self) -> tuple[WSGIServer, Thread]:
        host, port = self.settings.metrics_host, self.settings.metrics_port
        assert port is not None
        try:
            return self.metrics.serve(port, host)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUse(
                f"cannot serve metrics on {host}:{port}: the port is in use (another modstream?); "
                "choose one with --metrics-port, or 0 to turn metrics off"
            ) from None

    async def _ensure_topics(self) -> None:
        topics = self.settings.topics
        specs = [TopicSpec(topics.incoming, self.settings.partitions)]
        specs += [TopicSpec(name, self.settings.partitions) for name in topics.outputs()]
        created = await ensure_topics(
            self.kafka, specs, replication_factor=self.settings.replication_factor
        )
        if created:
            log.info("created topics: %s", ", ".join(created))

    def _consumer_timings(self) -> dict[str, int]:
        settings = self.settings
        embedded = self._embedded
        return {
            "session_timeout_ms": settings.session_timeout_ms
            or (EMBEDDED_SESSION_TIMEOUT_MS if embedded else KAFKA_SESSION_TIMEOUT_MS),
            "fetch_max_wait_ms": settings.fetch_max_wait_ms
            or (EMBEDDED_FETCH_MAX_WAIT_MS if embedded else KAFKA_FETCH_MAX_WAIT_MS),
        }

    async def run_scorer(
        self,
        stop: asyncio.Event,
        ready: asyncio.Event | None = None,
        *,
        attach: Attachment | None = None,
    ) -> None:
        """Compile the model, then consume and score until ``stop`` is set. ``attach`` runs
        beside the stream for as long as it consumes (the HTTP API sharing its moderator)."""
        settings = self.settings
        async with (
            await Scorer.start(settings.scorer) as scorer,
            Fetcher(settings.fetch) as fetcher,
        ):
            log.info("model %s compiled for %s", scorer.model_id, ", ".join(scorer.devices))
            self.metrics.devices.track(scorer.device_statistics)
            self.stream = ScoringStream(
                StreamConfig(
                    kafka=self.kafka,
                    topics=settings.topics,
                    group_id=settings.group_id,
                    policy=settings.policy,
                    max_in_flight=settings.max_in_flight,
                    log_interval_s=settings.log_interval_s,
                    cache=settings.cache,
                    **self._consumer_timings(),
                ),
                scorer,
                fetcher,
                self.metrics,
            )
            async with attach(self.stream) if attach else contextlib.nullcontext():
                await self.stream.run(stop, ready)
