"""``make bench``: build the corpora if missing, then run every benchmark in a short setting.

Each benchmark runs as its own process and writes its JSON to ``bench/results``; a failing one is
reported and the rest still run. The figures belong in ``docs/benchmarks.md`` with the CPU flags
printed first and the corpus's share of images scoring >= 0.05.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx_vnni", "amx_bf16")


def cpu_flags() -> str:
    try:
        words = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    return " ".join(flag for flag in FLAGS if flag in words) or "none of " + " ".join(FLAGS)


def run(name: str, *arguments: str) -> bool:
    print(f"\n== {name}", flush=True)
    done = subprocess.run([sys.executable, *arguments], check=False)
    if done.returncode != 0:
        print(f"!! {name} failed with status {done.returncode}", flush=True)
    return done.returncode == 0


def main() -> int:
    print(f"CPU flags: {cpu_flags()}")
    photos, mixed = DATA / "photos", DATA / "mixed"
    if not photos.is_dir():
        run("photo corpus", str(BENCH / "make_images.py"), str(photos), "--count", "240")
    if not mixed.is_dir():
        run(
            "mixed corpus", str(BENCH / "make_mixed_corpus.py"), str(mixed), "--photos", str(photos)
        )
    results = [
        run("model only", str(BENCH / "model_only.py"), "--batches", "1", "8", "--repeats", "3"),
        run("score vs peer, mixed (~50 % >= 0.05)", str(BENCH / "cli_vs_peer.py"), str(mixed),
            "--pairs", "3", "--variants", "fast", "exact", "--startup-runs", "0"),
        run("score vs peer, photos (~5 % >= 0.05)", str(BENCH / "cli_vs_peer.py"), str(photos),
            "--pairs", "3", "--variants", "fast", "exact", "--startup-runs", "0"),
        run("stream, mixed", str(BENCH / "stream_bench.py"), str(mixed), "--rounds", "1",
            "--broker", "both" if shutil.which("java") and shutil.which("mvn") else "tansu"),
        run("HTTP API vs peer server, mixed", str(BENCH / "serve_bench.py"), str(mixed),
            "--rounds", "1", "--limit", "60"),
        run("hash bank lookups (10 k, 1 M, 10 M hashes)", str(BENCH / "hash_bench.py")),
        run("PDQ against the reference, mixed", str(BENCH / "pdq_from_decode.py"), str(mixed)),
        run("video: a 30 s clip, and stills beside videos", str(BENCH / "video_bench.py")),
    ]  # fmt: skip
    if shutil.which("java") and shutil.which("mvn"):  # the verdict topic on Apache Kafka
        results.append(run("verdicts: 100 k posts, lookups, batches, freshness",
                           str(BENCH / "verdicts_bench.py"), "--posts", "100000",
                           "--duration", "10"))  # fmt: skip
    return 0 if all(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
