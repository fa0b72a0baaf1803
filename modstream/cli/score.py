"""``modstream score``: score files, directories and URLs; a table, or one JSON line per input.

Exit status: 0 when every input was scored, 1 when any failed, 2 on a usage error. The work
itself is in :mod:`modstream.cli.scoring`, imported only when the command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

from modstream.cli.options import add_allow_cidr, add_scorer_options


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "score",
        help="score image files, directories and URLs",
        description="Score images with open_nsfw. INPUT is a file, a directory (recursive) or an "
        "http(s) URL.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("--json", action="store_true", help="one JSON line per input on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_allow_cidr(parser, "URLs")
    add_scorer_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from modstream.cli.scoring import score_command

    return score_command(args)
