"""The work behind ``modstream run``: build the pipeline from the options and run it."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from modstream.cli.options import scorer_config
from modstream.connectors.publisher import publish_events
from modstream.connectors.registry import make_source, parse_source_spec
from modstream.errors import ConfigError
from modstream.pipeline.addresses import parse_cidrs
from modstream.pipeline.cache import CacheConfig
from modstream.pipeline.fetch_config import FetchConfig
from modstream.pipeline.policy import resolve_policy
from modstream.pipeline.service import Pipeline, PipelineSettings
from modstream.pipeline.stream import Topics

log = logging.getLogger("modstream")


def pipeline_settings(args: argparse.Namespace) -> PipelineSettings:
    policy = resolve_policy(args.policy)
    if args.review_at is not None:
        policy = policy.with_review(args.review_at)
    scorer = scorer_config(args)
    return PipelineSettings(
        bootstrap_servers=args.bootstrap_servers,
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
        ),
        max_in_flight=args.max_in_flight,
        metrics_port=args.metrics_port or None,
        session_timeout_ms=args.session_timeout_ms,
        fetch_max_wait_ms=args.fetch_max_wait_ms,
        cache=CacheConfig(max_entries=args.cache_entries, ttl_s=args.cache_ttl),
    )


def run_command(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        settings = pipeline_settings(args)
        options = dict(option.partition("=")[::2] for option in args.source_option)
        source = make_source(parse_source_spec(args.source), options) if args.source else None
    except (ConfigError, ValueError) as exc:
        print(f"modstream run: {exc}", file=sys.stderr)
        return 2
    if args.role == "connector" and source is None:
        print("modstream run: --role connector needs --source", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, args.role, source))


async def _run(settings: PipelineSettings, role: str, source: Any) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with Pipeline(settings) as pipeline:
        jobs: list[asyncio.Task[Any]] = []
        if role in ("all", "scorer"):
            jobs.append(asyncio.create_task(pipeline.run_scorer(stop)))
        connector: asyncio.Task[int] | None = None
        if role in ("all", "connector") and source is not None:
            connector = asyncio.create_task(
                publish_events(source, pipeline.bootstrap_servers, settings.topics.incoming)
            )
            jobs.append(connector)
            if role == "connector":
                connector.add_done_callback(lambda _task: stop.set())
        await stop.wait()
        log.info("stopping: draining in-flight work")
        if connector is not None and not connector.done():
            connector.cancel()  # the scorer drains by itself once stop is set
        results = await asyncio.gather(*jobs, return_exceptions=True)
    failures = [r for r in results if isinstance(r, Exception)]
    for failure in failures:
        log.error("stopped with an error: %r", failure)
    return 1 if failures else 0
