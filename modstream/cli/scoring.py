"""The work behind ``modstream score``.

Inputs are scored concurrently through one
:class:`~modstream.pipeline.score.scorer.Scorer`, and written out in input order through a
bounded window, so memory stays flat however many inputs there are.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections import Counter, deque
from typing import Any, TextIO

import orjson
from tqdm import tqdm

from modstream.cli.options import scorer_config
from modstream.errors import ConfigError, ModstreamError
from modstream.inputs import Input, expand
from modstream.pipeline.fetch.addresses import parse_cidrs
from modstream.pipeline.fetch.config import FetchConfig
from modstream.pipeline.moderate.cache import CacheConfig
from modstream.pipeline.moderate.moderator import Moderator, result_fields
from modstream.pipeline.moderate.policy import Policy, resolve_policy
from modstream.pipeline.score.scorer import Scorer, ScorerConfig

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
BULK_DEADLINE_S = 3600.0


def score_command(args: argparse.Namespace) -> int:
    try:
        policy = resolve_policy(args.policy)
        if args.review_at is not None:
            policy = policy.with_review(args.review_at)
        config = scorer_config(args, policy)
        allow = parse_cidrs(args.allow_cidr)
    except (ConfigError, ValueError) as exc:
        print(f"modstream score: {exc}", file=sys.stderr)
        return EXIT_USAGE
    inputs = list(expand(args.inputs))
    if not inputs:
        print("modstream score: no image files found in the given inputs", file=sys.stderr)
        return EXIT_USAGE
    fetch_config = FetchConfig(allow_cidrs=allow, max_bytes=config.limits.max_bytes)
    writer = _Writer(sys.stdout, as_json=args.json)
    with tqdm(
        total=len(inputs),
        file=sys.stderr,
        unit="img",
        disable=True if args.no_progress else None,
        dynamic_ncols=True,
    ) as progress:
        started = time.perf_counter()
        counts = asyncio.run(_score_all(inputs, config, fetch_config, policy, writer, progress))
        elapsed = time.perf_counter() - started
    if not args.json:
        summary = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()) if count)
        rate = len(inputs) / elapsed if elapsed > 0 else 0.0
        print(f"{len(inputs)} inputs in {elapsed:.2f} s ({rate:.1f}/s): {summary}", file=sys.stderr)
    return EXIT_FAILED if counts["error"] else EXIT_OK


async def _score_all(
    inputs: list[Input],
    config: ScorerConfig,
    fetch_config: FetchConfig,
    policy: Policy,
    writer: _Writer,
    progress: tqdm[Any],
) -> Counter[str]:
    counts: Counter[str] = Counter(error=0)
    async with contextlib.AsyncExitStack() as stack:
        fetcher = None
        if any(item.url is not None for item in inputs):
            from modstream.pipeline.fetch.fetcher import Fetcher  # aiohttp loads only for URLs

            fetcher = await stack.enter_async_context(Fetcher(fetch_config))
        # Decoding starts while OpenVINO loads and compiles on another thread.
        scorer = await stack.enter_async_context(await Scorer.start(config, wait=False))
        # Every input is scored: a batch job reports each one, so nothing is cached.
        moderator = Moderator(scorer, policy, fetcher=fetcher, cache=CacheConfig(max_entries=0))
        window: deque[asyncio.Task[dict[str, Any]]] = deque()
        limit = config.max_pending

        def emit(line: dict[str, Any]) -> None:
            counts["error" if "error" in line else line["decision"]] += 1
            writer.write(line, progress)
            progress.update(1)

        for item in inputs:
            window.append(asyncio.create_task(_score_one(item, moderator)))
            if len(window) >= limit:
                emit(await window.popleft())
        while window:
            emit(await window.popleft())
    return counts


async def _score_one(item: Input, moderator: Moderator) -> dict[str, Any]:
    # A batch job has no latency budget: let batches fill (max_delay still bounds the wait).
    deadline = time.monotonic() + BULK_DEADLINE_S
    try:
        if item.url is not None:
            moderated = await moderator.moderate_url(item.url, deadline=deadline)
        else:
            assert item.path is not None
            moderated = await moderator.moderate_bytes(item.path, deadline=deadline)
    except ModstreamError as exc:
        return {"input": item.label, "error": exc.to_dict()}
    return {"input": item.label, **result_fields(moderated)}


class _Writer:
    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        self._stream = stream
        self._as_json = as_json

    def write(self, line: dict[str, Any], progress: tqdm[Any]) -> None:
        if self._as_json:
            text = orjson.dumps(line).decode()
        elif "error" in line:
            error = line["error"]
            text = f"{'error':>8}  {error['kind']:<18} {line['input']}  ({error['message']})"
        else:
            text = f"{line['nsfw']:8.4f}  {line['decision']:<18} {line['input']}"
        progress.write(text, file=self._stream)
