"""``modstream run``: the streaming pipeline, as a scorer, a connector, or both in one process.

Scale out by starting many ``--role scorer`` processes with the same ``--group-id`` against one
Kafka cluster: Kafka splits the partitions of ``images.incoming`` among them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from modstream.cli.options import add_scorer_options, positive_int, scorer_config
from modstream.connectors.publisher import publish_events
from modstream.connectors.registry import SOURCES, make_source
from modstream.errors import ConfigError
from modstream.pipeline.addresses import parse_cidrs
from modstream.pipeline.cache import CacheConfig
from modstream.pipeline.fetch import FetchConfig
from modstream.pipeline.policy import resolve_policy
from modstream.pipeline.service import Pipeline, PipelineSettings

log = logging.getLogger("modstream")


def add_pipeline_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("pipeline")
    group.add_argument(
        "--bootstrap-servers",
        default=None,
        help="Kafka bootstrap servers; without it an embedded development broker is started",
    )
    group.add_argument(
        "--allow-cidr",
        action="append",
        default=[],
        metavar="CIDR",
        help="let fetches reach this otherwise refused range (repeatable), e.g. 127.0.0.0/8",
    )
    group.add_argument(
        "--metrics-port", type=int, default=9108, help="Prometheus port; 0 turns it off"
    )
    group.add_argument("--group-id", default="modstream-scorers", help="consumer group")
    group.add_argument("--partitions", type=positive_int, default=4, help="for created topics")
    group.add_argument("--replication-factor", type=positive_int, default=1)
    group.add_argument("--max-in-flight", type=positive_int, default=64)
    group.add_argument("--fetch-timeout", type=float, default=30.0, help="seconds per image")
    group.add_argument(
        "--cache-entries", type=int, default=100_000, help="scores cached by url and sha256; 0: off"
    )
    group.add_argument("--cache-ttl", type=float, default=3600.0, help="seconds a score is reused")
    group.add_argument(
        "--session-timeout-ms",
        type=positive_int,
        default=None,
        help="consumer group session timeout (default: 10000; 2000 on the embedded broker)",
    )


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run", help="run the streaming pipeline", description=__doc__
    )
    parser.add_argument("--role", choices=["all", "scorer", "connector"], default="all")
    parser.add_argument("--source", choices=sorted(SOURCES), help="connector to run")
    parser.add_argument(
        "--source-option", action="append", default=[], metavar="KEY=VALUE",
        help="connector option, e.g. urls=http://...,rate=20,events=300",
    )  # fmt: skip
    add_pipeline_options(parser)
    add_scorer_options(parser)
    parser.set_defaults(handler=run)


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
        cache=CacheConfig(max_entries=args.cache_entries, ttl_s=args.cache_ttl),
    )


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        settings = pipeline_settings(args)
        options = dict(option.partition("=")[::2] for option in args.source_option)
        source = make_source(args.source, options) if args.source else None
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
