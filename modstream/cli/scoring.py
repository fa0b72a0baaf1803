"""The work behind ``modstream score``.

Inputs are scored concurrently through one :class:`~modstream.pipeline.scorer.Scorer`, and written
out in input order through a bounded window, so memory stays flat however many inputs there are.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter, deque
from typing import Any, TextIO

import orjson
from tqdm import tqdm

from modstream.cli.inputs import Input, InputLoader, expand
from modstream.cli.options import scorer_config
from modstream.errors import ConfigError, ModstreamError
from modstream.pipeline.addresses import parse_cidrs
from modstream.pipeline.fetch_config import FetchConfig
from modstream.pipeline.policy import Policy, resolve_policy
from modstream.pipeline.scorer import Scorer, ScorerConfig

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
    loader = InputLoader(fetch_config)
    # Decoding starts while OpenVINO loads and compiles on another thread.
    async with await Scorer.start(config, wait=False) as scorer, loader:
        window: deque[asyncio.Task[dict[str, Any]]] = deque()
        limit = config.max_pending

        def emit(line: dict[str, Any]) -> None:
            counts["error" if "error" in line else line["decision"]] += 1
            writer.write(line, progress)
            progress.update(1)

        for item in inputs:
            window.append(asyncio.create_task(_score_one(item, scorer, loader, policy)))
            if len(window) >= limit:
                emit(await window.popleft())
        while window:
            emit(await window.popleft())
    return counts


async def _score_one(
    item: Input, scorer: Scorer, loader: InputLoader, policy: Policy
) -> dict[str, Any]:
    try:
        loaded = await loader.load(item)
        # A batch job has no latency budget: let batches fill (max_delay still bounds the wait).
        result = await scorer.score(loaded.body, deadline=time.monotonic() + BULK_DEADLINE_S)
    except ModstreamError as exc:
        return {"input": item.label, "error": exc.to_dict()}
    if item.url is None:
        timings = {"read": round(result.timings.read_s * 1000, 3), **result.timings.as_ms()}
    else:
        timings = {"fetch": round(loaded.load_s * 1000, 3), **result.timings.as_ms()}
    return {
        "input": item.label,
        "nsfw": round(result.nsfw, 6),
        "decision": policy.decide(result.nsfw).value,
        "policy": policy.name,
        "model": result.model,
        "device": result.device,
        "precision": result.precision,
        "preprocessing": result.preprocessing,
        "sha256": result.sha256,
        "width": result.width,
        "height": result.height,
        "timings": timings,
    }


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
