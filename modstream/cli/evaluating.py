"""The work behind ``modstream eval`` (imported only when the command runs)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import sys
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from modstream.cli.kafka_options import kafka_settings
from modstream.cli.options import scorer_config
from modstream.errors import ConfigError, ModstreamError
from modstream.evaluation import curves as cv
from modstream.evaluation.labelled import Labelled, from_csv, from_dirs
from modstream.evaluation.report import Targets, build_report, fitted_policy, render_text
from modstream.evaluation.reviewed import reviewed_set
from modstream.evaluation.scoring import Scored, ScoringRun, score_labelled, scored_arrays
from modstream.evaluation.weak import read_records, render_weak, weak_label_report
from modstream.kafka.reading import read_topic
from modstream.models.device_spec import default_cache_dir
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
SCORE_CACHE_NAME = "eval-scores.sqlite3"


def eval_command(args: argparse.Namespace) -> int:
    try:
        if args.results is not None:
            return _results(args)
        targets = Targets(fnr=args.target_fnr, fpr=args.target_fpr)
        items = from_csv(args.labels) if args.labels is not None else from_dirs(args.dirs)
        config = scorer_config(args)
        fetch = FetchConfig(
            allow_cidrs=parse_cidrs(args.allow_cidr), max_bytes=config.limits.max_bytes
        )
    except (ConfigError, ValueError) as exc:
        print(f"modstream eval: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        scoring = _score(items, config, fetch, args)
        report = build_report(
            scoring.scored, targets, model=scoring.model, preprocessing=scoring.preprocessing,
            rounds=args.bootstrap_rounds,
        )  # fmt: skip
        if args.out is not None:
            _write_out(args.out, scoring.scored, report, args.name)
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
        print(f"wrote {args.out}/report.html, policy.json, report.json and the plots")
    if args.json:
        print(orjson.dumps(report).decode())
    return EXIT_OK


def _score(
    items: list[Labelled], config: Any, fetch: FetchConfig, args: argparse.Namespace
) -> ScoringRun:
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
    from modstream.evaluation.pictures import draw, html_page

    scores, labels = scored_arrays(scored)
    pictures = draw(cv.curves(scores, labels), scores, labels, report)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for file_name, data in pictures.items():
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


def _result_records(args: argparse.Namespace) -> list[dict[str, Any]]:
    """From a JSON-lines file, or ``kafka:TOPIC`` read to its current end (no consumer group)."""
    source = str(args.results)
    if not source.startswith("kafka:"):
        return list(read_records(Path(source)))
    kafka = kafka_settings(args)
    if kafka is None:
        raise ConfigError(f"--results {source} needs --bootstrap-servers")

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
            print(f"wrote {args.out}/report.html, policy.json, report.json and the plots")
        print()
    print(render_weak(weak))
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "weak_labels.json").write_bytes(orjson.dumps(weak, option=orjson.OPT_INDENT_2))
    if args.json:
        print(orjson.dumps({**report, "weak_labels": weak}).decode())
    return EXIT_OK
