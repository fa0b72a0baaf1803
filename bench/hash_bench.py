"""Exact Hamming lookups of 256-bit PDQ hashes: modstream's HashIndex against a linear scan.

What it measures, for each bank size (random uniform 256-bit hashes):

* **build**: the wall time of ``HashIndex.build`` (a copy of the bank, then per 16-bit chunk a
  stable argsort and a bincount), the memory its arrays hold (``nbytes``) and the growth of the
  process's resident set over the build (``VmRSS`` from ``/proc/self/status``; the bank itself
  is allocated before).
* **lookups** at ``--distance`` (default 31, the usual PDQ match threshold), one query at a time
  with ``HashIndex.search``, the path the index picks for itself (``lookup_path``):

  - ``random``: uniform random queries; almost never within 31 bits of a banked hash, so this is
    the cost of proving there is no match (the common case of a moderation stream);
  - ``near-dup``: a banked hash with ``--flips`` (default 20) random bits inverted, as a re-encoded
    or lightly edited copy of known content would be; every one must find its source row;
  - ``linear``: the baseline, the same random queries answered by a full scan (an index built
    with the chunk tables switched off: XOR and popcount of every packed row).

How: queries are generated up front; a few untimed lookups warm the caches; then each lookup is
timed on its own with ``time.perf_counter_ns``. Reported are the median and 99th percentile in
microseconds and lookups per second (queries divided by their summed time, one thread). Results
are printed as tables and written as JSON to ``bench/results/``.

Run by hand::

    python bench/hash_bench.py                                  # 10 k, 1 M and 10 M rows
    python bench/hash_bench.py --sizes 100000 1000000 --queries 500 --distance 47
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import cpu_model, doc_parser

from modstream.pipeline.match.index import HashIndex

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True, slots=True)
class BuildMeasurement:
    rows: int
    build_s: float
    index_mb: float  # HashIndex.nbytes
    rss_growth_mb: float
    bytes_per_row: float


@dataclass(frozen=True, slots=True)
class LookupMeasurement:
    rows: int
    workload: str  # random, near-dup or linear
    path: str
    queries: int
    p50_us: float
    p99_us: float
    lookups_s: float
    hits_per_query: float
    found_source: float | None  # near-dup only: share of queries whose source row was returned


def rss_mb() -> float:
    with open("/proc/self/status", encoding="utf-8") as fp:
        for line in fp:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def near_duplicates(
    rng: np.random.Generator, bank: np.ndarray, count: int, flips: int
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` banked rows, each with ``flips`` distinct random bits inverted, and their rows."""
    sources = rng.integers(0, len(bank), size=count)
    bits = np.zeros((count, 256), dtype=np.uint8)
    for bit_row in bits:
        bit_row[rng.choice(256, flips, replace=False)] = 1
    return bank[sources] ^ np.packbits(bits, axis=1), sources


def time_lookups(
    index: HashIndex, queries: np.ndarray, distance: int, sources: np.ndarray | None = None
) -> tuple[np.ndarray, int, int]:
    """Nanoseconds per lookup, hits in all, and how many queries found their source row."""
    for query in queries[:10]:
        index.search(query, distance)
    elapsed = np.empty(len(queries), dtype=np.int64)
    hits = found = 0
    for i, query in enumerate(queries):
        started = time.perf_counter_ns()
        rows, _ = index.search(query, distance)
        elapsed[i] = time.perf_counter_ns() - started
        hits += len(rows)
        if sources is not None and sources[i] in rows:
            found += 1
    return elapsed, hits, found


def summarise(
    rows: int,
    workload: str,
    path: str,
    elapsed: np.ndarray,
    hits: int,
    found: float | None,
) -> LookupMeasurement:
    return LookupMeasurement(
        rows=rows,
        workload=workload,
        path=path,
        queries=len(elapsed),
        p50_us=round(float(np.percentile(elapsed, 50)) / 1e3, 1),
        p99_us=round(float(np.percentile(elapsed, 99)) / 1e3, 1),
        lookups_s=round(len(elapsed) / (float(elapsed.sum()) / 1e9), 1),
        hits_per_query=round(hits / len(elapsed), 3),
        found_source=found,
    )


def measure_size(
    rows: int, args: argparse.Namespace
) -> tuple[BuildMeasurement, list[LookupMeasurement]]:
    rng = np.random.default_rng(args.seed + rows)
    bank = rng.integers(0, 256, size=(rows, 32), dtype=np.uint8)
    before = rss_mb()
    started = time.perf_counter()
    index = HashIndex.build(bank)
    build_s = time.perf_counter() - started
    growth = rss_mb() - before
    build = BuildMeasurement(
        rows=rows,
        build_s=round(build_s, 3),
        index_mb=round(index.nbytes / 2**20, 1),
        rss_growth_mb=round(growth, 1),
        bytes_per_row=round(index.nbytes / rows, 1),
    )
    path = index.path(args.distance).value
    lookups = []
    randoms = rng.integers(0, 256, size=(args.queries, 32), dtype=np.uint8)
    elapsed, hits, _ = time_lookups(index, randoms, args.distance)
    lookups.append(summarise(rows, "random", path, elapsed, hits, None))
    near, sources = near_duplicates(rng, bank, args.queries, args.flips)
    elapsed, hits, found = time_lookups(index, near, args.distance, sources)
    lookups.append(
        summarise(rows, f"near-dup k={args.flips}", path, elapsed, hits, found / len(near))
    )
    del index
    linear = HashIndex.build(bank, multi_index_min_rows=sys.maxsize)
    # The scan costs the same whatever the query; fewer of them keep 10 M rows quick.
    scanned = randoms[: max(args.linear_queries, 1)]
    elapsed, hits, _ = time_lookups(linear, scanned, args.distance)
    lookups.append(summarise(rows, "linear", linear.path(args.distance).value, elapsed, hits, None))
    return build, lookups


def machine() -> dict[str, Any]:
    model, flags = cpu_model()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model,
        "flags": flags,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument(
        "--sizes", nargs="+", type=int, default=[10_000, 1_000_000, 10_000_000], help="bank rows"
    )
    parser.add_argument("--distance", type=int, default=31, help="max distance (default: 31)")
    parser.add_argument(
        "--flips", type=int, default=20, help="bits flipped in a near-duplicate (default: 20)"
    )
    parser.add_argument(
        "--queries", type=int, default=2000, help="timed lookups per workload (default: 2000)"
    )
    parser.add_argument(
        "--linear-queries", type=int, default=50, help="timed linear scans (default: 50)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: bench/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    info = machine()
    print(f"{info['cpu_count']} cores, {info['cpu_model']}, flags: {' '.join(info['flags'])}")
    print(f"numpy {info['numpy']}, python {info['python']}, d = {args.distance}")
    builds: list[BuildMeasurement] = []
    lookups: list[LookupMeasurement] = []
    for rows in args.sizes:
        build, measured = measure_size(rows, args)
        builds.append(build)
        lookups.extend(measured)
        print(f"{rows:,} rows done", flush=True)
    print()
    print(f"{'rows':>11} {'build s':>8} {'index MB':>9} {'RSS +MB':>8} {'B/row':>6}")
    for build in builds:
        print(
            f"{build.rows:>11,} {build.build_s:>8.2f} {build.index_mb:>9.1f} "
            f"{build.rss_growth_mb:>8.1f} {build.bytes_per_row:>6.1f}"
        )
    print()
    print(
        f"{'rows':>11} {'workload':<14} {'path':<12} {'p50 µs':>9} {'p99 µs':>9} "
        f"{'lookups/s':>10} {'hits/q':>7} {'found':>6}"
    )
    for lookup in lookups:
        found = "" if lookup.found_source is None else f"{lookup.found_source:.3f}"
        print(
            f"{lookup.rows:>11,} {lookup.workload:<14} {lookup.path:<12} {lookup.p50_us:>9.1f} "
            f"{lookup.p99_us:>9.1f} {lookup.lookups_s:>10.0f} {lookup.hits_per_query:>7.3f} "
            f"{found:>6}"
        )
    out = args.out or RESULTS_DIR / f"hash_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": "hash_bench",
        "machine": info,
        "settings": {
            "distance": args.distance,
            "flips": args.flips,
            "queries": args.queries,
            "linear_queries": args.linear_queries,
            "seed": args.seed,
        },
        "builds": [asdict(build) for build in builds],
        "lookups": [asdict(lookup) for lookup in lookups],
    }
    out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
