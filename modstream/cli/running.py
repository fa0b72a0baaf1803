"""The work behind ``modstream run``: build the stages from the options and run them together.

The stages (the scorer, the connectors) run in one :class:`asyncio.TaskGroup`: a stage that
fails (a device that cannot compile, a source that refuses our token, a port in use) cancels the
others, which shut down in order, and the process exits 1 with one line naming the failure.
SIGTERM and SIGINT stop every stage gracefully and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from modstream.cli.kafka_options import kafka_settings
from modstream.cli.options import configure_logging, scorer_config
from modstream.cli.sources import source_requests
from modstream.connectors.base import Source
from modstream.connectors.checkpoints import DirectoryCheckpoints, default_state_dir
from modstream.connectors.metrics import ConnectorMetrics
from modstream.connectors.publisher import PublisherConfig
from modstream.connectors.registry import make_source
from modstream.connectors.runner import run_connectors
from modstream.errors import ConfigError, ModstreamError
from modstream.kafka.access import BrokerProbe
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.policy import resolve_policy
from modstream.pipeline.stream.scoring import ScoringStream, Topics
from modstream.pipeline.stream.service import Attachment, Pipeline, PipelineSettings

if TYPE_CHECKING:
    from modstream.serve.server import ApiListen

log = logging.getLogger("modstream")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def pipeline_settings(args: argparse.Namespace) -> PipelineSettings:
    policy = resolve_policy(args.policy)
    if args.review_at is not None:
        policy = policy.with_review(args.review_at)
    scorer = scorer_config(args, policy)
    return PipelineSettings(
        kafka=kafka_settings(args),
        partitions=args.partitions,
        replication_factor=args.replication_factor,
        group_id=args.group_id,
        topics=Topics.with_prefix(args.topic_prefix),
        policy=policy,
        scorer=scorer,
        fetch=FetchConfig(
            allow_cidrs=parse_cidrs(args.allow_cidr),
            max_bytes=scorer.limits.max_bytes,
            total_timeout_s=args.fetch_timeout,
            file_root=args.allow_file_root,
        ),
        max_in_flight=args.max_in_flight,
        metrics_port=args.metrics_port or None,
        session_timeout_ms=args.session_timeout_ms,
        fetch_max_wait_ms=args.fetch_max_wait_ms,
        cache=CacheConfig(max_entries=args.cache_entries, ttl_s=args.cache_ttl),
    )


def run_command(args: argparse.Namespace) -> int:
    configure_logging()
    try:
        settings = pipeline_settings(args)
        sources = [make_source(spec, options) for spec, options in source_requests(args)]
    except (ConfigError, ValueError) as exc:
        print(f"modstream run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.role == "connector" and not sources:
        print("modstream run: --role connector needs --source", file=sys.stderr)
        return EXIT_USAGE
    if args.role == "connector" and args.serve_port is not None:
        print("modstream run: --serve-port needs a scorer (--role all or scorer)", file=sys.stderr)
        return EXIT_USAGE
    try:
        api = _api_listen(args, settings)
    except ConfigError as exc:
        print(f"modstream run: {exc}", file=sys.stderr)
        return EXIT_USAGE
    state_dir: Path = args.state_dir or default_state_dir()
    try:
        asyncio.run(_run(settings, args.role, sources, state_dir, api))
    except ModstreamError as exc:
        print(f"modstream run: {exc.kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a bug: still one line, with the traceback in the debug log
        log.debug("stopped by an unexpected error", exc_info=exc)
        print(f"modstream run: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _api_listen(args: argparse.Namespace, settings: PipelineSettings) -> ApiListen | None:
    if args.serve_port is None:
        return None
    from modstream.cli.serve import api_config
    from modstream.serve.server import ApiListen

    return ApiListen(
        host=args.serve_host, port=args.serve_port, port_flag="--serve-port",
        config=api_config(args.api_key_file, settings.scorer),
    )  # fmt: skip


def _api_beside(api: ApiListen, pipeline: Pipeline, joined: asyncio.Event) -> Attachment:
    """The HTTP API on the stream's own moderator: requests batch with the stream's images, and
    ``/v1/hash`` finds what the stream scored. Ready once the consumer has joined its group and
    while the broker answers."""
    from modstream.serve.server import api_site

    probe = BrokerProbe(pipeline.kafka)

    async def readiness() -> str | None:
        if not joined.is_set():
            return "the consumer has not joined its group yet"
        return await probe.problem()

    def attach(stream: ScoringStream) -> contextlib.AbstractAsyncContextManager[object]:
        return api_site(stream.moderator, pipeline.metrics, api, ready=readiness)

    return attach


async def _run(
    settings: PipelineSettings,
    role: str,
    sources: Sequence[Source],
    state_dir: Path,
    api: ApiListen | None = None,
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    scoring = role in ("all", "scorer")
    connecting = role in ("all", "connector") and bool(sources)
    async with Pipeline(settings) as pipeline:
        try:
            async with asyncio.TaskGroup() as stages:
                if scoring:
                    joined = asyncio.Event()
                    attach = _api_beside(api, pipeline, joined) if api is not None else None
                    stages.create_task(
                        pipeline.run_scorer(stop, joined, attach=attach), name="scorer"
                    )
                if connecting:
                    connectors = stages.create_task(
                        run_connectors(
                            sources,
                            kafka=pipeline.kafka,
                            config=PublisherConfig(topic=settings.topics.incoming),
                            checkpoints=DirectoryCheckpoints(state_dir),
                            stop=stop,
                            metrics=ConnectorMetrics(pipeline.metrics.registry),
                        ),
                        name="connectors",
                    )
                    if not scoring:  # a connector-only process ends with its sources
                        connectors.add_done_callback(lambda _task: stop.set())
        except BaseExceptionGroup as group:
            raise _first_failure(group) from None
    log.info("stopped")


def _first_failure(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped the run: the first one that is not a consequence (cancellation)."""
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_failure(error)
        if not isinstance(error, asyncio.CancelledError):
            return error
    return group.exceptions[0]
