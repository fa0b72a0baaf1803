"""``modstream review``: the web console where people judge the review queue."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.cli.options import (
    add_allow_cidr,
    add_allow_file_root,
    configure_logging,
    fetch_config,
    field_default,
)
from modstream.cli.runner import run_command, signalled
from modstream.errors import ConfigError
from modstream.pipeline.stream.topics import Topics
from modstream.review.config import ReviewSettings

if TYPE_CHECKING:
    from modstream.review.reviewers import Reviewers

log = logging.getLogger("modstream.review")


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "review",
        help="the web console for the review queue; decisions become labels",
        description=(
            "Serve a page where reviewers judge the items on the review topics. Each decision "
            "(nsfw, safe or skip) is published to images.reviewed with the original result; "
            "offsets are committed only for decided items. --export writes the decisions as "
            "JSON lines for modstream eval --results."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
    parser.add_argument("--port", type=int, default=8070, help="port (8070; 0: any)")
    parser.add_argument(
        "--reviewers-file",
        type=Path,
        metavar="FILE",
        help="one name:token per line (tokens of 16+ characters); required to serve",
    )
    parser.add_argument(
        "--topics",
        default=Topics().review,
        help="topics to judge, comma-separated (add images.flagged for audits)",
    )
    parser.add_argument("--reviewed-topic", default=Topics().reviewed, help="where decisions go")
    parser.add_argument("--group-id", default=field_default(ReviewSettings, "group_id"),
                        help="consumer group (default: %(default)s)")  # fmt: skip
    parser.add_argument(
        "--lease-s",
        type=float,
        default=field_default(ReviewSettings, "lease_s"),
        help="how long an item shown stays yours, in seconds (default: %(default)s)",
    )
    parser.add_argument(
        "--bank-decisions", default=None, metavar="BANK",
        help="add the PDQ hash of every image judged nsfw to this bank on --bank-topic, so "
        "scorers following it (run --bank-topic) match the next copy; a safe decision on a "
        "matched image (--topics images.matched) is recorded as a dispute",
    )  # fmt: skip
    parser.add_argument(
        "--bank-topic", default=Topics().banks, metavar="TOPIC",
        help="the compacted topic of shared banks (default images.banks)",
    )  # fmt: skip
    add_allow_cidr(parser, "image fetches")
    add_allow_file_root(parser)
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="write every decision on the reviewed topic to FILE and exit",
    )
    add_kafka_options(
        parser,
        without="required: the console starts no broker (for a modstream run on its embedded "
        "broker, give the address that run logs, e.g. 127.0.0.1:PORT with its --embedded-port)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    configure_logging()

    async def main(settings: tuple[ReviewSettings, Reviewers | None]) -> None:
        review, reviewers = settings
        if reviewers is None:
            await _export(review, args.export)
        else:
            await _serve(review, reviewers, args.host, args.port)

    return run_command("review", lambda: _settings(args), main)


def _settings(args: argparse.Namespace) -> tuple[ReviewSettings, Reviewers | None]:
    """The console's settings, and its reviewers (None: an export, which serves nobody)."""
    from modstream.review.reviewers import read_reviewers

    kafka = kafka_settings(args)
    if kafka is None:
        raise ConfigError(
            "--bootstrap-servers is required: the console starts no broker, it reads a "
            "cluster's review topics (a modstream run on its embedded broker logs its address)"
        )
    if args.export is None and args.reviewers_file is None:
        raise ConfigError("--reviewers-file is required to serve the console")
    reviewers = read_reviewers(args.reviewers_file) if args.export is None else None
    topics = tuple(topic.strip() for topic in args.topics.split(",") if topic.strip())
    settings = ReviewSettings(
        kafka=kafka, topics=topics, reviewed_topic=args.reviewed_topic,
        group_id=args.group_id, lease_s=args.lease_s,
        fetch=fetch_config(args, file_root=args.allow_file_root),
        bank_decisions=args.bank_decisions, bank_topic=args.bank_topic,
    )  # fmt: skip
    return settings, reviewers


async def _export(settings: ReviewSettings, path: Path) -> None:
    from modstream.review.export import export_decisions

    count = await export_decisions(settings.kafka, settings.reviewed_topic, path)
    print(f"wrote {count} decisions to {path}", file=sys.stderr)


async def _serve(settings: ReviewSettings, reviewers: Reviewers, host: str, port: int) -> None:
    from modstream.review.app import build_app
    from modstream.review.service import ReviewService
    from modstream.web.site import bound_site

    stop = signalled()
    async with ReviewService(settings) as service:
        app = build_app(service, reviewers)
        async with bound_site(app, host, port, port_flag="--port") as bound:
            log.info("review console on http://%s:%d for %d reviewers (topics %s)", host, bound,
                     len(reviewers), ", ".join(settings.topics))  # fmt: skip
            await service.run(stop)
    log.info("stopped")
