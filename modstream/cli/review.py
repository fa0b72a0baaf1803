"""``modstream review``: the web console where people judge the review queue."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modstream.cli.kafka_options import add_kafka_options
from modstream.cli.options import add_allow_cidr, add_allow_file_root


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
        default="images.review",
        help="topics to judge, comma-separated (add images.flagged for audits)",
    )
    parser.add_argument("--reviewed-topic", default="images.reviewed", help="where decisions go")
    parser.add_argument("--group-id", default="modstream-review", help="consumer group")
    parser.add_argument(
        "--lease-s", type=float, default=300.0, help="how long an item shown stays yours (300)"
    )
    add_allow_cidr(parser, "image fetches")
    add_allow_file_root(parser)
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="FILE.jsonl",
        help="write every decision on the reviewed topic to FILE and exit",
    )
    add_kafka_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modstream.cli.reviewing import review_command

    return review_command(args)
