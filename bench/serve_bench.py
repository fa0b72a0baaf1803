"""The HTTP API's round trip: ``modstream serve`` against the reference library behind aiohttp.

A client in this process POSTs each image of a corpus (raw bytes) and times the answer, at a
fixed number of requests in flight (``--concurrency``, default 1 4 16). The two servers take turns
in each round (``--rounds``), each as its own process, warmed up first, so their figures are paired
and the machine's drift hits both. Reported per server and concurrency: p50, p99 and mean round
trip, and requests/s; then the ratios modstream / peer. Mirador published a 250 ms average round
trip for its API, over the internet; these are loopback figures.

    python bench/serve_bench.py bench/data/mixed --rounds 3
"""

from __future__ import annotations

import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import cpu_model, doc_parser

from modstream.imagefiles import walk_images
from modstream.pipeline.metrics import percentile

BENCH = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    if name == "modstream":
        # The result cache off: the same bodies are sent in every measurement, and the peer has
        # none; a cached answer would time a dictionary look-up, not a scoring.
        command = [sys.executable, "-m", "modstream", "serve", "--port", str(port),
                   "--cache-entries", "0", *extra]  # fmt: skip
    else:
        command = [sys.executable, str(BENCH / "peer_server.py"), "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_ready(session: aiohttp.ClientSession, base: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            async with session.get(f"{base}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base} never became ready")
        await asyncio.sleep(0.2)


async def load(
    session: aiohttp.ClientSession, url: str, bodies: list[bytes], concurrency: int
) -> dict[str, float]:
    """Every body once, ``concurrency`` requests in flight; latency figures in ms."""
    pending = iter(bodies)
    latencies: list[float] = []

    async def worker() -> None:
        for body in pending:
            started = time.perf_counter()
            async with session.post(url, data=body) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url} answered {response.status}")
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    ordered = sorted(latencies)
    return {
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
        "per_s": len(ordered) / elapsed,
    }


async def measure(
    name: str, bodies: list[bytes], levels: list[int], extra: list[str]
) -> dict[int, dict[str, float]]:
    port = free_port()
    process = start(name, port, extra)
    base = f"http://127.0.0.1:{port}"
    path = "/v1/score" if name == "modstream" else "/score"
    try:
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await wait_ready(session, base)
            await load(session, base + path, bodies[: min(len(bodies), 32)], 4)  # warm up
            return {level: await load(session, base + path, bodies, level) for level in levels}
    finally:
        process.terminate()
        process.wait(30)


async def main() -> int:
    parser = doc_parser(__doc__)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--limit", type=int, default=120, help="images per measurement (120)")
    parser.add_argument("--serve-args", default="", help="extra modstream serve flags")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()
    model, flags = cpu_model()
    print(f"CPU: {model}; flags: {' '.join(flags) or 'none'}")
    bodies = [path.read_bytes() for path in list(walk_images(args.corpus))[: args.limit]]
    extra = args.serve_args.split()
    runs: dict[str, list[dict[int, dict[str, float]]]] = {"modstream": [], "peer": []}
    for round_number in range(1, args.rounds + 1):
        order = ["modstream", "peer"] if round_number % 2 else ["peer", "modstream"]
        for name in order:
            runs[name].append(await measure(name, bodies, args.concurrency, extra))
        line = "  ".join(
            f"{name} c{level}: p50 {runs[name][-1][level]['p50_ms']:.0f} ms "
            f"{runs[name][-1][level]['per_s']:.1f}/s"
            for name in ("modstream", "peer") for level in args.concurrency
        )  # fmt: skip
        print(f"round {round_number}: {line}", flush=True)
    summary: dict[str, Any] = {"cpu": model, "flags": flags, "images": len(bodies), "levels": {}}
    print(f"\n{'c':>3} {'':10}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'req/s':>8}")
    for level in args.concurrency:
        rows = {}
        for name in ("modstream", "peer"):
            rows[name] = {key: statistics.median(run[level][key] for run in runs[name])
                          for key in ("p50_ms", "p99_ms", "mean_ms", "per_s")}  # fmt: skip
            r = rows[name]
            print(f"{level:>3} {name:10}{r['p50_ms']:9.1f}{r['p99_ms']:9.1f}{r['mean_ms']:9.1f}"
                  f"{r['per_s']:8.1f}")  # fmt: skip
        ratios = {  # paired: per round, then the median
            key: statistics.median(m[level][key] / p[level][key]
                                   for m, p in zip(runs["modstream"], runs["peer"], strict=True))
            for key in ("p50_ms", "p99_ms", "per_s")
        }  # fmt: skip
        print(f"    modstream/peer: p50 x{ratios['p50_ms']:.2f}, p99 x{ratios['p99_ms']:.2f}, "
              f"throughput x{ratios['per_s']:.2f}")  # fmt: skip
        summary["levels"][level] = {**rows, "ratios": ratios}
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
