"""``modstream score``: score files, directories and URLs; a table, or one JSON line per input.

Inputs are moderated concurrently through one moderation step and written out in input order
through a bounded window (:func:`~modstream.pipeline.moderate.window.in_order`), so memory stays
flat however many inputs there are. Exit status: 0 when every input was scored, 1 when any
failed, 2 on a usage error. OpenVINO, PIL and aiohttp load only once the command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

from modstream.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    add_allow_cidr,
    add_bank_options,
    add_scorer_options,
    bank_settings,
    fetch_config,
    flood_settings,
    policy_from,
    positive_float,
    scorer_config,
)
from modstream.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tqdm import tqdm

    from modstream.inputs import Input
    from modstream.pipeline.moderate.moderator import Moderator
    from modstream.pipeline.moderate.step import ModerationSettings


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "score",
        help="score image files, directories and URLs",
        description="Score images with open_nsfw. INPUT is a file, a directory (recursive; its "
        "images are found by their bytes, other files are named on stderr) or an http(s) URL.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("--json", action="store_true", help="one JSON line per input on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_allow_cidr(parser, "URLs")
    parser.add_argument(
        "--fetch-timeout", type=positive_float, default=30.0,
        help="seconds an image URL may take, retries included (default 30)",
    )  # fmt: skip
    add_scorer_options(parser)
    add_bank_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from tqdm import tqdm

    from modstream.imagefiles import Skipped
    from modstream.inputs import expand
    from modstream.pipeline.moderate.cache import CacheConfig
    from modstream.pipeline.moderate.step import ModerationSettings

    try:
        policy = policy_from(args)
        scorer = scorer_config(args, policy)
        fetch = fetch_config(args, scorer)
        banks = bank_settings(args)
        flood = flood_settings(args)
    except (ConfigError, ValueError) as exc:
        print(f"modstream score: {exc}", file=sys.stderr)
        return EXIT_USAGE
    skipped: list[Skipped] = []
    inputs = list(expand(args.inputs, skipped.append))
    for item in skipped:
        print(f"modstream score: skipped {item}", file=sys.stderr)
    if not inputs:
        plural = "file" if len(skipped) == 1 else "files"
        found = f" ({len(skipped)} {plural} skipped)" if skipped else ""
        print(f"modstream score: no image files found in the given inputs{found}", file=sys.stderr)
        return EXIT_USAGE
    settings = ModerationSettings(
        scorer=scorer,
        policy=policy,
        fetch=fetch if any(item.url is not None for item in inputs) else None,
        cache=CacheConfig(max_entries=0),  # a batch job reports every input: nothing is cached
        banks=banks,
        flood=flood,
    )
    writer = _Writer(sys.stdout, as_json=args.json)
    with tqdm(
        total=len(inputs),
        file=sys.stderr,
        unit="img",
        disable=True if args.no_progress else None,
        dynamic_ncols=True,
    ) as progress:
        started = time.perf_counter()
        try:
            counts = asyncio.run(_score_all(inputs, settings, writer, progress))
        except ConfigError as exc:  # a bank file that cannot be read
            print(f"modstream score: {exc}", file=sys.stderr)
            return EXIT_FAILED
        elapsed = time.perf_counter() - started
    if not args.json:
        print(summary_line(len(inputs), elapsed, counts), file=sys.stderr)
    return EXIT_FAILED if counts["error"] else EXIT_OK


def summary_line(total: int, elapsed_s: float, counts: Mapping[str, int]) -> str:
    """``5 inputs in 1.20 s (4.2/s): 3 safe, 1 flagged, 1 error``: decisions, then errors."""
    rate = total / elapsed_s if elapsed_s > 0 else 0.0
    order = ("matched", "flagged", "review", "safe")
    parts = [f"{counts[name]} {name}" for name in order if counts.get(name)]
    parts += [f"{n} {name}" for name, n in sorted(counts.items()) if n and name not in order
              and name != "error"]  # fmt: skip
    errors = counts.get("error", 0)
    if errors:
        parts.append(f"{errors} error{'' if errors == 1 else 's'}")
    inputs = "input" if total == 1 else "inputs"
    return f"{total} {inputs} in {elapsed_s:.2f} s ({rate:.1f}/s): {', '.join(parts) or 'none'}"


async def _score_all(
    inputs: list[Input], settings: ModerationSettings, writer: _Writer, progress: tqdm[Any]
) -> Counter[str]:
    from modstream.pipeline.moderate.step import open_moderator
    from modstream.pipeline.moderate.window import in_order

    counts: Counter[str] = Counter(error=0)
    # Decoding starts while OpenVINO loads and compiles on another thread.
    async with open_moderator(settings, wait_compiled=False) as moderator:

        async def one(item: Input) -> dict[str, Any]:
            return await _score_one(item, moderator)

        async for line in in_order(inputs, one, size=settings.scorer.max_pending):
            counts["error" if "error" in line else line["decision"]] += 1
            writer.write(line, progress)
            progress.update(1)
    return counts


async def _score_one(item: Input, moderator: Moderator) -> dict[str, Any]:
    from modstream.errors import ModstreamError
    from modstream.pipeline.moderate.moderator import result_fields
    from modstream.pipeline.moderate.window import bulk_deadline

    try:
        if item.url is not None:
            moderated = await moderator.moderate_url(item.url, deadline=bulk_deadline())
        else:
            assert item.path is not None
            moderated = await moderator.moderate_bytes(item.path, deadline=bulk_deadline())
    except ModstreamError as exc:
        return {"input": item.label, "error": exc.to_dict()}
    return {"input": item.label, **result_fields(moderated)}


class _Writer:
    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        self._stream = stream
        self._as_json = as_json

    def write(self, line: dict[str, Any], progress: tqdm[Any]) -> None:
        import orjson

        if self._as_json:
            text = orjson.dumps(line).decode()
        elif "error" in line:
            error = line["error"]
            text = f"{'error':>8}  {error['kind']:<18} {line['input']}  ({error['message']})"
        else:
            text = f"{line['nsfw']:8.4f}  {line['decision']:<18} {line['input']}"
            match = line.get("match")
            if match is not None:
                text += f"  ({match['bank']}: {match['id']}, distance {match['distance']})"
        progress.write(text, file=self._stream)
