"""One modstream process: its stages side by side in one task group.

    run_stages({"scorer": ..., "connectors": ..., "api": ...})
        -> every stage a task of one asyncio.TaskGroup
        -> the first stage that fails cancels the others, which shut down in order
        -> that failure is raised alone (not an exception group), for one line on stderr

``modstream run`` (:func:`run_pipeline`: the scoring stream, its connectors, and the HTTP API on
the stream's own moderator) and ``modstream demo`` both run this way, so a failing stage stops
either loudly. SIGTERM and SIGINT set ``stop``: every stage stops gracefully.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modstream.connectors.base import Source
    from modstream.pipeline.moderate.moderator import Moderator
    from modstream.pipeline.stream.service import Pipeline, PipelineSettings
    from modstream.serve.server import ApiListen

__all__ = ["ProcessPlan", "first_failure", "run_pipeline", "run_stages", "stop_on_signals"]

log = logging.getLogger("modstream")
Stage = Callable[[], Coroutine[Any, Any, None]]


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM and SIGINT set ``stop`` (a graceful shutdown) instead of killing the process."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


async def run_stages(stages: Mapping[str, Stage]) -> None:
    """Run every stage until all return; the first failure cancels the rest and is raised."""
    try:
        async with asyncio.TaskGroup() as group:
            for name, stage in stages.items():
                group.create_task(stage(), name=name)
    except BaseExceptionGroup as failures:
        raise first_failure(failures) from None


def first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped the run: the first one, depth first, that is not a consequence
    (a cancellation); the first cancellation if that is all there is."""
    for error in group.exceptions:
        cause = first_failure(error) if isinstance(error, BaseExceptionGroup) else error
        if not isinstance(cause, asyncio.CancelledError):
            return cause
    first = group.exceptions[0]
    return first_failure(first) if isinstance(first, BaseExceptionGroup) else first


@dataclass(frozen=True, kw_only=True, slots=True)
class ProcessPlan:
    """What one ``modstream run`` process does."""

    settings: PipelineSettings
    role: str = "all"  # all, scorer, connector
    sources: Sequence[Source] = ()
    state_dir: Path | None = None  # connectors' positions; None: the default state directory
    api: ApiListen | None = None  # the HTTP API beside the stream (--serve-port)

    @property
    def scoring(self) -> bool:
        return self.role in ("all", "scorer")

    @property
    def connecting(self) -> bool:
        return self.role in ("all", "connector") and bool(self.sources)


async def run_pipeline(plan: ProcessPlan, stop: asyncio.Event) -> None:
    """The pipeline's stages until ``stop`` (a connector-only process: until its sources end)."""
    from modstream.pipeline.stream.service import Pipeline

    async with Pipeline(plan.settings) as pipeline:
        stages: dict[str, Stage] = {}
        if plan.scoring:
            stages["scorer"] = lambda: _scorer(pipeline, plan.api, stop)
        if plan.connecting:
            stages["connectors"] = lambda: _connectors(pipeline, plan, stop)
        await run_stages(stages)
    log.info("stopped")


async def _scorer(pipeline: Pipeline, api: ApiListen | None, stop: asyncio.Event) -> None:
    """Compile, then the stream and (with ``api``) the HTTP API side by side on one moderator:
    API requests batch with the stream's images, and ``/v1/hash`` finds what the stream scored."""
    async with pipeline.moderation() as moderator:
        stream = pipeline.stream_for(moderator)
        joined = asyncio.Event()
        stages: dict[str, Stage] = {"stream": lambda: stream.run(stop, joined)}
        if api is not None:
            stages["api"] = lambda: _api(pipeline, moderator, api, joined, stop)
        await run_stages(stages)


async def _api(
    pipeline: Pipeline,
    moderator: Moderator,
    api: ApiListen,
    joined: asyncio.Event,
    stop: asyncio.Event,
) -> None:
    """Ready once the consumer has joined its group and while the broker answers."""
    from modstream.kafka.access import BrokerProbe
    from modstream.serve.server import api_site

    probe = BrokerProbe(pipeline.kafka)

    async def readiness() -> str | None:
        if not joined.is_set():
            return "the consumer has not joined its group yet"
        return await probe.problem()

    async with api_site(moderator, pipeline.metrics, api, ready=readiness):
        await stop.wait()


async def _connectors(pipeline: Pipeline, plan: ProcessPlan, stop: asyncio.Event) -> None:
    from modstream.connectors.checkpoints import DirectoryCheckpoints, default_state_dir
    from modstream.connectors.metrics import ConnectorMetrics
    from modstream.connectors.publisher import PublisherConfig
    from modstream.connectors.runner import run_connectors

    try:
        await run_connectors(
            plan.sources,
            kafka=pipeline.kafka,
            config=PublisherConfig(topic=plan.settings.topics.incoming),
            checkpoints=DirectoryCheckpoints(plan.state_dir or default_state_dir()),
            stop=stop,
            metrics=ConnectorMetrics(pipeline.metrics.registry),
        )
    finally:
        if not plan.scoring:  # a connector-only process ends with its sources
            stop.set()
