"""Assemble a running pipeline: broker (embedded or real), topics, metrics endpoint, the stream.

``modstream run`` and ``modstream demo`` both build on :class:`Pipeline`. Start-up order is the
readiness handshake: broker reachable and our credentials accepted -> topics exist -> model
compiled (:func:`~modstream.pipeline.moderate.step.open_moderator`) -> the bank topic read to
its end (with ``bank_topic``) -> producer up -> consumer joins the group. Shutdown runs the other
way round (:class:`contextlib.AsyncExitStack`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from threading import Thread
from typing import Self
from wsgiref.simple_server import WSGIServer

from modstream.errors import PortInUse
from modstream.kafka.access import check_access
from modstream.kafka.broker import EmbeddedBroker, TopicSpec, ensure_topics
from modstream.kafka.settings import GroupTimings, KafkaSettings
from modstream.pipeline.metrics import PipelineMetrics
from modstream.pipeline.moderate.moderator import Moderator
from modstream.pipeline.moderate.step import ModerationSettings, open_moderator
from modstream.pipeline.stream.banks import following_banks
from modstream.pipeline.stream.config import METRICS_PORT, PARTITIONS, REPLICATION_FACTOR
from modstream.pipeline.stream.scoring import ScoringStream, StreamConfig
from modstream.pipeline.stream.topics import Topics

log = logging.getLogger("modstream.service")
# Kafka's usual session timeout; the embedded broker makes every join wait about half of it, so a
# development pipeline uses 2 s (see README, "Embedded broker").
KAFKA_SESSION_TIMEOUT_S = GroupTimings().session_timeout_s
EMBEDDED_SESSION_TIMEOUT_S = 2.0
# Kafka answers a waiting fetch as soon as a record arrives; the embedded broker waits out most of
# fetch_max_wait, so there the wait is kept short (it costs the broker some CPU instead).
KAFKA_FETCH_MAX_WAIT_S = GroupTimings().fetch_max_wait_s
EMBEDDED_FETCH_MAX_WAIT_S = 0.02


@dataclass(frozen=True, kw_only=True, slots=True)
class PipelineSettings:
    kafka: KafkaSettings | None = None  # None: start the embedded development broker
    embedded_port: int | None = None  # the embedded broker's port (None: a free one)
    moderation: ModerationSettings = field(default_factory=ModerationSettings)
    stream: StreamConfig = field(default_factory=StreamConfig)
    partitions: int = PARTITIONS
    replication_factor: int = REPLICATION_FACTOR
    metrics_port: int | None = METRICS_PORT
    metrics_host: str = "127.0.0.1"  # loopback, as every listener; containers set 0.0.0.0
    # None: chosen for the broker (KAFKA_* or EMBEDDED_* above).
    session_timeout_s: float | None = None
    fetch_max_wait_s: float | None = None
    # The compacted topic of shared hash banks, read to its end before the first image and
    # followed afterwards (pipeline/stream/banks.py); None: banks come from files only.
    bank_topic: str | None = None

    def __post_init__(self) -> None:
        if self.bank_topic is not None and not self.moderation.live_banks:
            raise ValueError("a bank topic needs moderation settings with live_banks=True")

    @property
    def topics(self) -> Topics:
        return self.stream.topics


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

    @property
    def watch_command(self) -> str:
        """The ``modstream results`` command that follows this pipeline's result topics."""
        command = f"modstream results --bootstrap-servers {self.bootstrap_servers} --follow"
        topics = self.settings.topics
        prefix = topics.incoming.removesuffix(".incoming")
        if prefix != "images" and Topics.with_prefix(prefix) == topics:
            command += f" --topic-prefix {prefix}"
        return command

    async def __aenter__(self) -> Self:
        try:
            if self._kafka is None:
                broker = EmbeddedBroker(self.settings.embedded_port)
                self._kafka = (await self._stack.enter_async_context(broker)).kafka
            await check_access(self._kafka)
            await self._ensure_topics()
            if self._embedded:
                log.info("watch the results with: %s", self.watch_command)
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
        if self.settings.bank_topic is not None:
            specs.append(TopicSpec(self.settings.bank_topic, 1, compacted=True))
        created = await ensure_topics(
            self.kafka, specs, replication_factor=self.settings.replication_factor
        )
        if created:
            log.info("created topics: %s", ", ".join(created))

    def stream_config(self) -> StreamConfig:
        """The stream's settings, with consumer timings chosen for this broker where unset."""
        settings, embedded = self.settings, self._embedded
        session = settings.session_timeout_s or (
            EMBEDDED_SESSION_TIMEOUT_S if embedded else KAFKA_SESSION_TIMEOUT_S
        )
        fetch_wait = settings.fetch_max_wait_s or (
            EMBEDDED_FETCH_MAX_WAIT_S if embedded else KAFKA_FETCH_MAX_WAIT_S
        )
        timings = dataclasses.replace(
            settings.stream.timings, session_timeout_s=session, fetch_max_wait_s=fetch_wait
        )
        return dataclasses.replace(settings.stream, timings=timings)

    def stream_for(self, moderator: Moderator) -> ScoringStream:
        """The scoring stream of this pipeline, on ``moderator`` (kept as :attr:`stream`)."""
        self.stream = ScoringStream(self.stream_config(), self.kafka, moderator, self.metrics)
        return self.stream

    @contextlib.asynccontextmanager
    async def moderation(self) -> AsyncIterator[Moderator]:
        """The moderation step of this pipeline, with the bank topic read into its matcher."""
        async with open_moderator(self.settings.moderation, metrics=self.metrics) as moderator:
            topic = self.settings.bank_topic
            if topic is None:
                yield moderator
                return
            assert moderator.matcher is not None  # live_banks (checked in the settings)
            async with following_banks(self.kafka, topic, moderator.matcher):
                yield moderator

    async def run_scorer(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Compile the model, then consume and score until ``stop`` is set."""
        async with self.moderation() as moderator:
            await self.stream_for(moderator).run(stop, ready)
