"""``modstream eval``: fit thresholds to labelled images, or check results against weak labels.

Exit status: 0 when the report was made, 1 when it could not be (a model that does not load, a
set with a single class once unreadable images are left out), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_allow_cidr,
    add_scorer_options,
    fetch_config,
    scorer_config,
)
from modstream.errors import BrokerError, ConfigError, ModstreamError

if TYPE_CHECKING:
    from modstream.evaluation.labelled import Labelled
    from modstream.evaluation.scoring import Scored, ScoringRun
    from modstream.pipeline.fetch.config import FetchConfig

SCORE_CACHE_NAME = "eval-scores.sqlite3"


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
        "straight from a cluster (e.g. kafka:images.reviewed; needs --bootstrap-servers)",
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
        help="write report.html, report.json, policy.json, scores.csv and the plots (the plots "
        "need the eval extra, matplotlib; without it they are skipped)",
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
    add_kafka_options(
        parser,
        without="needed only for --results kafka:TOPIC, which reads that cluster: eval starts "
        "no broker (for a modstream run on its embedded broker, give the address that run "
        "logs, e.g. 127.0.0.1:PORT with its --embedded-port)",
    )
    # Thresholds are fitted on exact scores: fast mode would screen the low ones approximately.
    parser.set_defaults(handler=run, decode="exact")


def run(args: argparse.Namespace) -> int:
    from modstream.evaluation.labelled import from_csv, from_dirs
    from modstream.evaluation.report import Targets, build_report, render_text

    try:
        if args.results is not None:
            return _results(args)
    except BrokerError as exc:  # kafka:TOPIC on a cluster that cannot be used
        print(f"modstream eval: {exc.kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (ConfigError, ValueError) as exc:
        print(f"modstream eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        targets = Targets(fnr=args.target_fnr, fpr=args.target_fpr)
        if args.labels is not None:
            items = from_csv(args.labels)
        else:
            items = from_dirs(
                args.dirs, lambda item: print(f"modstream eval: skipped {item}", file=sys.stderr)
            )
        config = scorer_config(args)
        fetch = fetch_config(args, config)
    except (ConfigError, ValueError) as exc:
        print(f"modstream eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        scoring = _score(items, config, fetch, args)
        report = build_report(
            scoring.scored, targets, model=scoring.model, preprocessing=scoring.preprocessing,
            rounds=args.bootstrap_rounds,
        )  # fmt: skip
    except ModstreamError as exc:
        print(f"modstream eval: {exc.kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"scored {len(items)} inputs in {scoring.seconds:.1f} s "
        f"({scoring.cache_hits} from the score cache)",
        file=sys.stderr,
    )
    print(render_text(report))
    if args.out is not None:
        try:
            _write_out(args.out, scoring.scored, report, args.name)
        except ModstreamError as exc:
            print(f"modstream eval: {exc.kind}: {exc}", file=sys.stderr)
            return EXIT_FAILED
    if args.json:
        import orjson

        print(orjson.dumps(report).decode())
    return EXIT_OK


def _score(
    items: list[Labelled], config: Any, fetch: FetchConfig, args: argparse.Namespace
) -> ScoringRun:
    import asyncio

    from tqdm import tqdm

    from modstream.evaluation.scoring import score_labelled
    from modstream.models.device_spec import default_cache_dir

    cache_path = None
    if not args.no_score_cache:
        cache_path = args.score_cache or (args.cache_dir or default_cache_dir()) / SCORE_CACHE_NAME
    with tqdm(total=len(items), file=sys.stderr, unit="img", dynamic_ncols=True,
              disable=True if args.no_progress else None) as progress:  # fmt: skip
        return asyncio.run(
            score_labelled(
                items, config, fetch, cache_path=cache_path, on_done=lambda _s: progress.update(1)
            )
        )


def _write_out(out: Path, scored: list[Scored], report: dict[str, Any], name: str) -> None:
    """Writes everything it can into ``out`` and says what it wrote; without matplotlib the plots
    are skipped (one line on stderr naming them and the extra) and the rest is still written."""
    import csv

    import orjson

    from modstream.evaluation import curves as cv
    from modstream.evaluation.pictures import PICTURES, PLOTS_MISSING, draw, html_page
    from modstream.evaluation.report import fitted_policy
    from modstream.evaluation.scoring import scored_arrays

    scores, labels = scored_arrays(scored)
    pictures = draw(cv.curves(scores, labels), scores, labels, report)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for file_name, data in (pictures or {}).items():
            (out / file_name).write_bytes(data)
        (out / "report.html").write_text(html_page(report, pictures), encoding="utf-8")
        (out / "report.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        (out / "policy.json").write_bytes(
            orjson.dumps(fitted_policy(report, name), option=orjson.OPT_INDENT_2)
        )
        with (out / "scores.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["input", "label", "nsfw", "error"])
            for item in scored:
                nsfw = "" if item.nsfw is None else f"{item.nsfw:.6f}"
                writer.writerow([item.item.input.label, item.item.label, nsfw,
                                 item.error_kind or ""])  # fmt: skip
    except OSError as exc:
        raise ConfigError(f"cannot write to --out {out}: {exc.strerror}") from None
    written = ["report.html", "report.json", "policy.json", "scores.csv", *(pictures or {})]
    print(f"wrote {', '.join(written)} to {out}")
    if pictures is None:
        print(f"modstream eval: skipped {', '.join(PICTURES)}: {PLOTS_MISSING}", file=sys.stderr)


def _result_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    """From a JSON-lines file, or ``kafka:TOPIC`` read to its current end (no consumer group)."""
    import asyncio
    import contextlib

    import orjson

    from modstream.evaluation.weak import read_records
    from modstream.kafka.reading import read_topic

    source = str(args.results)
    if not source.startswith("kafka:"):
        return list(read_records(Path(source)))
    kafka = kafka_settings(args)
    if kafka is None:
        raise ConfigError(
            f"--results {source} needs --bootstrap-servers: eval starts no broker, it reads the "
            "topic from a cluster (a modstream run on its embedded broker logs its address)"
        )

    async def read() -> list[dict[str, Any]]:
        records = []
        async for value in read_topic(kafka, source.removeprefix("kafka:")):
            with contextlib.suppress(orjson.JSONDecodeError):
                record = orjson.loads(value)
                if isinstance(record, dict):
                    records.append(record)
        return records

    return asyncio.run(read())


def _results(args: argparse.Namespace) -> int:
    """Result records: refit from reviewers' decisions when there are any; always report the
    authors' weak labels beside them."""
    import orjson

    from modstream.evaluation.report import Targets, build_report, render_text
    from modstream.evaluation.reviewed import reviewed_set
    from modstream.evaluation.weak import render_weak, weak_label_report

    records = _result_records(args)
    weak = weak_label_report(records)
    reviewed = reviewed_set(records)
    report: dict[str, Any] = {}
    if reviewed is not None:
        targets = Targets(fnr=args.target_fnr, fpr=args.target_fpr)
        report = build_report(
            reviewed.scored, targets, model=reviewed.model,
            preprocessing=reviewed.preprocessing, rounds=args.bootstrap_rounds,
        )  # fmt: skip
        report["labels"] = "reviewers"
        report["warnings"] += reviewed.warnings()
        print(render_text(report))
        if args.out is not None:
            _write_out(args.out, reviewed.scored, report, args.name)
        print()
    print(render_weak(weak))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "weak_labels.json").write_bytes(orjson.dumps(weak, option=orjson.OPT_INDENT_2))
    if args.json:
        print(orjson.dumps({**report, "weak_labels": weak}).decode())
    return EXIT_OK
