"""``modstream results``: what a pipeline decided, per image, read from a cluster's result topics.

The result topics (``PREFIX.flagged``, ``.review``, ``.safe``, ``.matched``, ``.errors``) are
read from their beginning with no consumer group, so reading disturbs no one: up to their
current end, or with ``--follow`` on as new results arrive, until Ctrl-C or SIGTERM. Each record
is printed as ``modstream score`` prints an input (score, decision, url), or as the JSON record
itself (``--json``: what ``modstream eval --results FILE.jsonl`` reads). Exit status: 0 when the
topics were read, 1 when the cluster could not be (nothing answers), 2 on a usage error (a flag,
or a topic the cluster does not have).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from modstream.cli.kafka_options import add_kafka_options, kafka_settings
from modstream.cli.options import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from modstream.errors import BrokerError, ConfigError, ModstreamError

if TYPE_CHECKING:
    import asyncio

    from modstream.kafka.settings import KafkaSettings

DECISIONS = ("flagged", "review", "safe", "matched", "errors")


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "results",
        help="print the per-image results of a pipeline, from its cluster's result topics",
        description="Print what a pipeline decided, per image: the records of its result "
        "topics (PREFIX.flagged, .review, .safe, .matched and .errors), read from their "
        "beginning with no consumer group, so reading disturbs no one; up to their current "
        "end, or with --follow on as new results arrive. Each is printed as modstream score "
        "prints an input (score, decision, url), or as its JSON record (--json, which "
        "modstream eval --results reads). "
        "Exit status: 0 when the topics were read, 1 when the cluster could not be reached, 2 on "
        "a usage error (a flag, or a topic the cluster does not have).",
    )
    parser.add_argument(
        "--follow", action="store_true", help="after the results so far, print new ones as "
        "they arrive, until Ctrl-C",
    )  # fmt: skip
    parser.add_argument(
        "--decision", action="append", choices=DECISIONS, default=None, metavar="DECISION",
        help=f"only these results, repeatable: {', '.join(DECISIONS)} (default: all)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="one JSON record per line on stdout")
    parser.add_argument(
        "--topic-prefix", default="images",
        help="the pipeline's --topic-prefix: PREFIX.flagged, PREFIX.review, PREFIX.safe, "
        "PREFIX.matched, PREFIX.errors (default: images)",
    )  # fmt: skip
    add_kafka_options(
        parser, required=True,
        without="required: results starts no broker (a modstream run on its embedded broker "
        "logs the address, and the whole command, to use)",
    )  # fmt: skip
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from modstream.pipeline.stream.topics import Topics

    try:
        kafka = kafka_settings(args)
        assert kafka is not None  # --bootstrap-servers is required
        topics = Topics.with_prefix(args.topic_prefix)
        chosen = args.decision or DECISIONS
        wanted = [getattr(topics, decision) for decision in DECISIONS if decision in chosen]
    except (ConfigError, ValueError) as exc:
        print(f"modstream results: {exc}", file=sys.stderr)
        return EXIT_USAGE
    printer = ResultPrinter(sys.stdout, as_json=args.json)
    try:
        asyncio.run(_print_results(kafka, wanted, printer, follow=args.follow))
    except BrokerError as exc:
        print(f"modstream results: {exc.kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except ConfigError as exc:  # a topic the cluster does not have
        print(f"modstream results: {exc}; is --topic-prefix the pipeline's?", file=sys.stderr)
        return EXIT_USAGE
    except ModstreamError as exc:
        print(f"modstream results: {exc.kind}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BrokenPipeError:  # `modstream results | head`: the reader has what it wanted
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    if not args.json:
        print(printer.summary(wanted), file=sys.stderr)
    return EXIT_OK


async def _print_results(
    kafka: KafkaSettings, topics: Sequence[str], printer: ResultPrinter, *, follow: bool
) -> None:
    import asyncio

    from modstream.kafka.reading import read_topics
    from modstream.process import stop_on_signals

    stop = asyncio.Event()
    stop_on_signals(stop)

    async def read() -> None:
        async for topic, value in read_topics(kafka, topics, follow=follow, role="results"):
            printer.write(topic, value)

    reading = asyncio.ensure_future(read())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
    await _cancel(stopping)
    if not reading.done():  # stopped by a signal: a graceful end, not an error
        await _cancel(reading)
        return
    reading.result()


async def _cancel(task: asyncio.Future[Any]) -> None:
    import asyncio
    import contextlib

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def result_line(record: Mapping[str, Any]) -> str:
    """One result as ``modstream score`` prints one input: score, decision, url (or id)."""
    label = record.get("url") or record.get("id")
    if label is None and "source_topic" in record:  # a record that was not a valid event
        label = f"{record['source_topic']}[{record.get('partition')}]@{record.get('offset')}"
    error = record.get("error")
    if isinstance(error, Mapping):
        kind, message = error.get("kind", "internal"), error.get("message", "")
        return f"{'error':>8}  {kind:<18} {label}  ({message})"
    nsfw = record.get("nsfw")
    score = f"{nsfw:8.4f}" if isinstance(nsfw, int | float) else f"{'?':>8}"
    return f"{score}  {record.get('decision', '?'):<18} {label}"


class ResultPrinter:
    """Prints each result record as it is read, and counts them by topic."""

    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        self._stream = stream
        self._as_json = as_json
        self.counts: Counter[str] = Counter()

    def write(self, topic: str, value: bytes) -> None:
        import orjson

        self.counts[topic] += 1
        if self._as_json:
            text = value.decode("utf-8", errors="replace").rstrip("\n")
        else:
            try:
                record = orjson.loads(value)
            except orjson.JSONDecodeError:
                record = None
            if not isinstance(record, dict):
                text = f"{'?':>8}  {'not_json':<18} {topic}"
            else:
                text = result_line(record)
        print(text, file=self._stream, flush=True)

    def summary(self, topics: Sequence[str]) -> str:
        """``12 results: 3 on images.flagged, ...``, for stderr."""
        total = sum(self.counts.values())
        if not total:
            return f"no results on {', '.join(topics)}"
        each = ", ".join(f"{self.counts[topic]} on {topic}" for topic in topics)
        return f"{total} result{'s' if total != 1 else ''}: {each}"
