"""The work behind ``modstream review`` (imported only when the command runs)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from modstream.cli.kafka_options import kafka_settings
from modstream.cli.options import configure_logging
from modstream.errors import ConfigError, ModstreamError
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.review.app import build_app
from modstream.review.export import export_decisions
from modstream.review.reviewers import Reviewers, read_reviewers
from modstream.review.service import ReviewService, ReviewSettings
from modstream.web.site import bound_site

log = logging.getLogger("modstream.review")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def review_command(args: argparse.Namespace) -> int:
    configure_logging()
    try:
        kafka = kafka_settings(args)
        if kafka is None:
            raise ConfigError("--bootstrap-servers is required: the console reads the cluster's "
                              "review topics")  # fmt: skip
        if args.export is None and args.reviewers_file is None:
            raise ConfigError("--reviewers-file is required to serve the console")
        reviewers = read_reviewers(args.reviewers_file) if args.export is None else None
        topics = tuple(topic.strip() for topic in args.topics.split(",") if topic.strip())
        settings = ReviewSettings(
            kafka=kafka, topics=topics, reviewed_topic=args.reviewed_topic,
            group_id=args.group_id, lease_s=args.lease_s,
            fetch=FetchConfig(allow_cidrs=parse_cidrs(args.allow_cidr),
                              file_root=args.allow_file_root),
        )  # fmt: skip
    except (ConfigError, ValueError) as exc:
        print(f"modstream review: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.export is not None:
            count = asyncio.run(export_decisions(kafka, args.reviewed_topic, args.export))
            print(f"wrote {count} decisions to {args.export}", file=sys.stderr)
            return EXIT_OK
        assert reviewers is not None
        asyncio.run(_serve(settings, reviewers, args.host, args.port))
    except ModstreamError as exc:
        print(f"modstream review: {exc.kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _serve(settings: ReviewSettings, reviewers: Reviewers, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with ReviewService(settings) as service:
        app = build_app(service, reviewers)
        async with bound_site(app, host, port, port_flag="--port") as bound:
            log.info("review console on http://%s:%d for %d reviewers (topics %s)", host, bound,
                     len(reviewers), ", ".join(settings.topics))  # fmt: skip
            await service.run(stop)
    log.info("stopped")
