"""``modstream hash``: PDQ hashes of image files, directories and URLs, as a bank file.

Each input becomes a bank line, ``PDQHEX INPUT``, so ``modstream hash DIR > bank.txt`` turns a
collection into a bank (the id of each entry is the file it came from). The hash is the C++
reference's on every pixel of the image, as other systems hash the files they exchange, and the
same hash the stream, ``score`` and ``serve`` publish for that file. An image
whose hash quality is below ``--min-quality`` (50: featureless, its hash unstable) is written as a
comment line, so the output stays a valid bank. Exit status: 0 when every input was hashed, 1 when
one could not be, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from modstream.cli.options import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    MB,
    add_allow_cidr,
    fetch_config,
    positive_float,
)

if TYPE_CHECKING:
    from modstream.inputs import Input
    from modstream.models.decode import DecodeLimits
    from modstream.pipeline.fetch.fetcher import Fetcher


def add_parser(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "hash",
        help="print PDQ hashes of images (a hash bank file)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument(
        "--json", action="store_true",
        help="one JSON line per input: input, pdq, pdq_quality (or error)",
    )  # fmt: skip
    parser.add_argument(
        "--min-quality", type=int, default=50,
        help="hashes below this quality are written as comments (default 50)",
    )  # fmt: skip
    parser.add_argument(
        "--rotations", action="store_true",
        help="also the hashes of the 7 rotations and mirrors (JSON: pdq_variants)",
    )  # fmt: skip
    parser.add_argument(
        "--max-image-mb", type=positive_float, default=20.0, help="largest encoded image accepted"
    )
    add_allow_cidr(parser, "URLs")
    parser.set_defaults(handler=run, fetch_timeout=30.0)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from modstream.errors import ConfigError
    from modstream.imagefiles import Skipped
    from modstream.inputs import expand
    from modstream.models.decode import DecodeLimits

    skipped: list[Skipped] = []
    inputs = list(expand(args.inputs, skipped.append))
    for item in skipped:
        print(f"modstream hash: skipped {item}", file=sys.stderr)
    if not inputs:
        print("modstream hash: no image files found in the given inputs", file=sys.stderr)
        return EXIT_USAGE
    try:
        limits = DecodeLimits(max_bytes=int(args.max_image_mb * MB))
        fetch = fetch_config(args) if any(item.url for item in inputs) else None
    except (ConfigError, ValueError) as exc:
        print(f"modstream hash: {exc}", file=sys.stderr)
        return EXIT_USAGE
    failed = asyncio.run(_hash_all(inputs, args, limits, fetch))
    return EXIT_FAILED if failed else EXIT_OK


async def _hash_all(
    inputs: list[Input], args: argparse.Namespace, limits: DecodeLimits, fetch: Any
) -> int:
    import contextlib

    async with contextlib.AsyncExitStack() as stack:
        fetcher = None
        if fetch is not None:
            from modstream.pipeline.fetch.fetcher import Fetcher

            fetcher = await stack.enter_async_context(Fetcher(fetch))
        failed = 0
        for item in inputs:
            line, ok = await _hash_one(item, args, limits, fetcher)
            failed += not ok
            print(line, flush=True)
    return failed


async def _hash_one(
    item: Input, args: argparse.Namespace, limits: DecodeLimits, fetcher: Fetcher | None
) -> tuple[str, bool]:
    import asyncio

    import orjson

    from modstream.errors import ModstreamError
    from modstream.models.decode import read_limited
    from modstream.models.pdq import VARIANTS
    from modstream.models.preprocess import hash_image

    try:
        if item.url is not None:
            assert fetcher is not None
            body = (await fetcher.fetch(item.url)).body
        else:
            assert item.path is not None
            body = await asyncio.to_thread(read_limited, item.path, limits)
        hashed = await asyncio.to_thread(hash_image, body, limits, dihedral=args.rotations)
    except ModstreamError as exc:
        if args.json:
            return orjson.dumps({"input": item.label, "error": exc.to_dict()}).decode(), False
        print(f"modstream hash: {item.label}: {exc.kind}: {exc}", file=sys.stderr)
        return f"# {exc.kind}: {item.label}", False
    pdq = hashed.pdq
    if args.json:
        line: dict[str, Any] = {"input": item.label, "pdq": pdq.hex, "pdq_quality": pdq.quality}
        if args.rotations:
            line["pdq_variants"] = [bits.hex() for bits in pdq.variants]
        return orjson.dumps(line).decode(), True
    if pdq.quality < args.min_quality:
        return f"# quality {pdq.quality} < {args.min_quality}: {pdq.hex} {item.label}", True
    lines = [f"{pdq.hex} {item.label}"]
    # Each variant is an entry of its own, with an id that says which one it is.
    named = zip(pdq.variants, VARIANTS, strict=False) if pdq.variants else ()
    lines += [f"{bits.hex()} {item.label} ({name})" for bits, name in named]
    return "\n".join(lines), True
