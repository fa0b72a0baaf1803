"""``modstream eval``: fit thresholds to labelled images, or check results against weak labels.

Exit status: 0 when the report was made, 1 when it could not be (a model that does not load, a
set with a single class once unreadable images are left out), 2 on a usage error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from modstream.cli.kafka_options import add_kafka_options
from modstream.cli.options import add_allow_cidr, add_scorer_options


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "eval",
        help="fit thresholds to labelled images; check results against authors' labels",
        description=(
            "Score a labelled set (1 = not safe, 0 = safe), report AUC-ROC, average precision "
            "and three operating points (low: false-negative target, best accuracy, high: "
            "false-positive target) with bootstrap intervals, beside the presets; write plots, "
            "an HTML page and a policy file. With --results, report how result records agree "
            "with the self-labels and sensitive flags their authors set."
        ),
    )
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--labels",
        type=Path,
        metavar="FILE.csv",
        help="CSV with 'label' and 'path' or 'url' columns",
    )
    given.add_argument(
        "--dirs", nargs="+", metavar="safe=DIR|nsfw=DIR", help="label every image below each folder"
    )
    given.add_argument(
        "--results",
        metavar="FILE.jsonl|kafka:TOPIC",
        help="result records from the pipeline (one JSON object per line), or a topic read "
        "straight from the cluster (e.g. kafka:images.reviewed, with --bootstrap-servers)",
    )
    parser.add_argument(
        "--target-fnr",
        type=float,
        default=0.005,
        help="false-negative rate the 'low' threshold must meet (0.005)",
    )
    parser.add_argument(
        "--target-fpr",
        type=float,
        default=0.01,
        help="false-positive rate the 'high' threshold must meet (0.01)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the report as one JSON object, stdout's last line",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="write plots, report.html, report.json, policy.json, scores.csv",
    )
    parser.add_argument("--name", default="fitted", help="the fitted policy's name (fitted)")
    parser.add_argument(
        "--score-cache",
        type=Path,
        default=None,
        metavar="FILE",
        help="scores kept between runs (default: in the model cache folder)",
    )
    parser.add_argument("--no-score-cache", action="store_true", help="score everything again")
    parser.add_argument("--bootstrap-rounds", type=int, default=2000, help="(2000)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_allow_cidr(parser, "URLs")
    add_scorer_options(parser)
    add_kafka_options(parser)
    # Thresholds are fitted on exact scores: fast mode would screen the low ones approximately.
    parser.set_defaults(handler=run, decode="exact")


def run(args: argparse.Namespace) -> int:
    from modstream.cli.evaluating import eval_command

    return eval_command(args)
