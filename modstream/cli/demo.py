"""``modstream demo``: the offline demo (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
from typing import Any

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.cli.options import (
    add_scorer_options,
    configure_logging,
    positive_float,
    positive_int,
    scorer_config,
)
from modstream.errors import ConfigError
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.moderate.policy import resolve_policy
from modstream.pipeline.stream.scoring import Topics


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
    add_kafka_options(parser)
    add_scorer_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modstream.demo.app import DemoConfig, run_demo
    from modstream.pipeline.stream.service import PipelineSettings

    configure_logging(logging.INFO if args.verbose else logging.WARNING)
    try:
        policy = resolve_policy(args.policy)
        policy = policy.with_review(args.review_at if args.review_at is not None else 0.3)
        scorer = scorer_config(args, policy)
        kafka = kafka_settings(args)
    except (ConfigError, ValueError) as exc:
        print(f"modstream demo: {exc}", file=sys.stderr)
        return 2
    run_name = f"modstream-demo-{secrets.token_hex(4)}"
    settings = PipelineSettings(
        kafka=kafka,
        # On the embedded broker (new and empty each run) the usual names; on a real cluster
        # names of this run's own, so the watcher counts this run's outputs only.
        topics=Topics() if kafka is None else Topics.with_prefix(run_name),
        group_id="modstream-scorers" if kafka is None else run_name,
        policy=policy,
        scorer=scorer,
        # The demo's image server is on loopback; nothing else is allowed.
        fetch=FetchConfig(allow_cidrs=parse_cidrs(["127.0.0.0/8"]), total_timeout_s=10.0),
        metrics_port=args.metrics_port or None,
        metrics_host="127.0.0.1",
        partitions=2,
    )
    config = DemoConfig(
        rate_per_s=args.rate, events=args.events, timeout_s=args.timeout, json=args.json
    )
    return asyncio.run(run_demo(config, settings, sys.stdout))
