"""``modstream demo``: the offline demo (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from typing import TYPE_CHECKING, Any

from modstream.cli.kafka_options import add_kafka_options, embedded_port, kafka_settings
from modstream.cli.options import (
    add_scorer_options,
    configure_logging,
    policy_from,
    positive_float,
    positive_int,
    scorer_config,
)
from modstream.cli.runner import run_command

if TYPE_CHECKING:
    from modstream.demo.app import DemoConfig
    from modstream.pipeline.stream.service import PipelineSettings


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline offline on bundled images",
        description="Embedded broker, a loopback image server, a synthetic firehose and the real "
        "pipeline, with a live view and a closing summary (p50/p99 round trip). With "
        "--bootstrap-servers the demo runs on that Kafka cluster instead, on topics and a "
        "consumer group of its own (modstream-demo-<random>.*), so runs never see each other.",
    )
    parser.add_argument("--rate", type=positive_float, default=12.0, help="events per second")
    parser.add_argument("--events", type=positive_int, default=240, help="events to send")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--timeout", type=positive_float, default=180.0, help="give up after (s)")
    parser.add_argument("--metrics-port", type=int, default=0, help="Prometheus port; 0: off")
    parser.add_argument("--verbose", action="store_true", help="log pipeline events")
    add_kafka_options(
        parser, embedded=True,
        without="without it the embedded development broker is started on 127.0.0.1 (in "
        "memory, gone when the demo ends)",
    )  # fmt: skip
    add_scorer_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    return run_command("demo", lambda: _settings(args), _demo)


def _settings(args: argparse.Namespace) -> tuple[DemoConfig, PipelineSettings]:
    from modstream.demo.app import DemoConfig
    from modstream.pipeline.fetch.addresses import parse_cidrs
    from modstream.pipeline.fetch.config import FetchConfig
    from modstream.pipeline.moderate.step import ModerationSettings
    from modstream.pipeline.stream.scoring import StreamConfig
    from modstream.pipeline.stream.service import PipelineSettings
    from modstream.pipeline.stream.topics import Topics

    policy = policy_from(args)
    if args.review_at is None:  # the demo shows a review band
        policy = policy.with_review(0.3)
    scorer = scorer_config(args, policy)
    kafka = kafka_settings(args)
    run_name = f"modstream-demo-{secrets.token_hex(4)}"
    settings = PipelineSettings(
        kafka=kafka,
        embedded_port=embedded_port(args),
        moderation=ModerationSettings(
            scorer=scorer,
            policy=policy,
            # The demo's image server is on loopback; nothing else is allowed.
            fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=10.0),
        ),
        # On the embedded broker (new and empty each run) the usual names; on a real cluster
        # names of this run's own, so the watcher counts this run's outputs only.
        stream=StreamConfig(
            topics=Topics() if kafka is None else Topics.with_prefix(run_name),
            group_id=StreamConfig().group_id if kafka is None else run_name,
        ),
        metrics_port=args.metrics_port or None,
        metrics_host="127.0.0.1",
        partitions=2,
    )
    config = DemoConfig(
        rate_per_s=args.rate, events=args.events, timeout_s=args.timeout, json=args.json
    )
    return config, settings


async def _demo(settings: tuple[DemoConfig, PipelineSettings]) -> int:
    from modstream.demo.app import run_demo

    config, pipeline = settings
    return await run_demo(config, pipeline, sys.stdout)
