"""``modstream verdicts``: brand-safety verdicts per post, image URL and sha256, over HTTP.

modstream verdicts --bootstrap-servers B [--host H] [--port 8072] [--topic-prefix images]
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.cli.options import add_duration, configure_logging, field_default
from modstream.cli.runner import run_command, signalled
from modstream.errors import ConfigError
from modstream.pipeline.stream.topics import Topics
from modstream.verdicts.config import VerdictSettings


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "verdicts",
        help="answer brand-safety lookups by post, image URL or sha256 (for ad servers, feeds)",
        description="Keep the newest verdict per post, image URL and sha256 from the result "
        "topics and the reviewers' decisions, in the compacted topic PREFIX.verdicts that every "
        "replica reads, and answer GET /v1/verdicts?post=|url=|sha256=[&allow=full|standard|"
        "limited] and POST /v1/verdicts with IAB brand-safety tiers. Run as many replicas as "
        "you like: they answer alike.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8072, help="port to bind (default 8072)")
    parser.add_argument(
        "--topic-prefix", default="images",
        help="the pipeline's --topic-prefix: results from PREFIX.flagged, .review, .safe and "
        ".matched, decisions from PREFIX.reviewed, verdicts in PREFIX.verdicts (default: images)",
    )  # fmt: skip
    parser.add_argument(
        "--group-id", default=field_default(VerdictSettings, "group_id"),
        help="the consumer group the replicas share (default: %(default)s)",
    )  # fmt: skip
    add_duration(
        parser, "--stale-after", default=field_default(VerdictSettings, "stale_after_s"),
        help="/readyz says stale when the broker has not answered for this long; lookups still "
        "answer from memory (default: %(default)s s)",
    )  # fmt: skip
    timings = field_default(VerdictSettings, "timings")
    add_duration(
        parser, "--session-timeout", default=timings.session_timeout_s,
        help="the consumer group's session timeout (default: %(default)s s)",
    )  # fmt: skip
    add_duration(
        parser, "--fetch-max-wait", default=timings.fetch_max_wait_s,
        help="how long a fetch of the input waits at most for records (default: %(default)s s)",
    )  # fmt: skip
    parser.add_argument(
        "--max-batch", type=int, default=field_default(VerdictSettings, "max_batch"),
        help="subjects in one POST /v1/verdicts at most (default: %(default)s)",
    )  # fmt: skip
    add_kafka_options(parser, without="required: the verdicts come from a cluster")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modstream.verdicts.server import serve_verdicts

    configure_logging()

    async def main(settings: VerdictSettings) -> None:
        await serve_verdicts(settings, host=args.host, port=args.port, stop=signalled())

    return run_command("verdicts", lambda: _settings(args), main)


def _settings(args: argparse.Namespace) -> VerdictSettings:
    kafka = kafka_settings(args)
    if kafka is None:
        raise ConfigError("--bootstrap-servers is required: the verdicts come from a cluster")
    topics = Topics.with_prefix(args.topic_prefix)
    return VerdictSettings(
        kafka=kafka, result_topics=(topics.flagged, topics.review, topics.safe, topics.matched),
        reviewed_topic=topics.reviewed, verdict_topic=topics.verdicts, group_id=args.group_id,
        stale_after_s=args.stale_after_s, max_batch=args.max_batch,
        timings=dataclasses.replace(
            field_default(VerdictSettings, "timings"),
            session_timeout_s=args.session_timeout_s, fetch_max_wait_s=args.fetch_max_wait_s,
        ),
    )  # fmt: skip
