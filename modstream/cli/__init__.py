"""The ``modstream`` command: one sub-command per job."""

from __future__ import annotations

import argparse
import sys

from modstream import __version__
from modstream.cli import (
    bank,
    demo,
    eval,
    hash,
    labeler,
    results,
    review,
    run,
    score,
    serve,
    verdicts,
)
from modstream.cli.helptext import PlainTextParser
from modstream.cli.runner import failed


def build_parser() -> argparse.ArgumentParser:
    parser = PlainTextParser(  # sub-commands' parsers are of the same class
        prog="modstream", description="Real-time NSFW moderation of image streams."
    )
    parser.add_argument("--version", action="version", version=f"modstream {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    score.add_parser(subparsers)
    hash.add_parser(subparsers)
    run.add_parser(subparsers)
    results.add_parser(subparsers)
    serve.add_parser(subparsers)
    eval.add_parser(subparsers)
    review.add_parser(subparsers)
    bank.add_parser(subparsers)
    labeler.add_parser(subparsers)
    verdicts.add_parser(subparsers)
    demo.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; what escapes its own handling still ends in one line, not a trace."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("modstream: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the last net: one line (see runner.failed), exit 1
        return failed(args.command, exc)
