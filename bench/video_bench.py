"""Video scoring: per-video latency and frames/s for a 30 s clip, and what videos do to stills.

What it measures, in one process with the scorer as ``modstream score`` builds it (defaults):

* a generated 30 s H.264 clip (``--width`` x ``--height``, 30 fps, moving gradients with a
  distinct stretch in the middle, written by PyAV): the wall time of ``Scorer.score`` per video
  (demux, seek, decode, scale, crop, infer every sampled frame), median of ``--repeats``, and the
  sampled frames scored per second of that time;
* stills alongside videos: the round trip of 40 still JPEGs alone, then with two videos being
  scored at the same time (p50 and p99 of each), to show that a video's frames share the
  batcher with stills under the same deadlines rather than stalling them.

Run by hand::

    python bench/video_bench.py
"""

from __future__ import annotations

import asyncio
import io
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from benchlib import cpu_model, doc_parser
from PIL import Image

from modstream.pipeline.score.scorer import Scorer, ScorerConfig

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TESTS = Path(__file__).resolve().parent.parent / "tests"  # mediagen writes the clip


def make_clip(seconds: float, width: int, height: int, fps: int = 30) -> bytes:
    """Moving gradients, with a bluer stretch from 14 s to 16 s, as H.264 in MP4."""
    sys.path.insert(0, str(TESTS))
    from mediagen import encode

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)

    def frame(t: float) -> np.ndarray:
        shift = 40 * np.sin(t)
        red = (x + shift * 4) % 256
        green = (y + shift * 2) % 256
        blue = np.full_like(red, 200.0 if 14 <= t < 16 else 60.0)
        return np.stack([red, green, blue], axis=-1).astype(np.uint8)

    return encode((frame(index / fps) for index in range(round(seconds * fps))), fps=fps)


def make_stills(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    stills = []
    for _ in range(count):
        pixels = rng.integers(0, 255, (900, 1200, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).resize((1200, 900)).save(buffer, format="JPEG", quality=85)
        stills.append(buffer.getvalue())
    return stills


async def _round_trips(scorer: Scorer, stills: list[bytes]) -> list[float]:
    async def one(data: bytes) -> float:
        started = time.perf_counter()
        await scorer.score(data)
        return time.perf_counter() - started

    return list(await asyncio.gather(*(one(data) for data in stills)))


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(args: object) -> dict[str, object]:
    clip = make_clip(30.0, args.width, args.height)  # type: ignore[attr-defined]
    stills = make_stills(40)
    async with await Scorer.start(ScorerConfig()) as scorer:
        await scorer.score(clip)  # warm-up
        latencies, frames = [], 0
        for _ in range(args.repeats):  # type: ignore[attr-defined]
            started = time.perf_counter()
            result = await scorer.score(clip)
            latencies.append(time.perf_counter() - started)
            assert result.frames is not None
            frames = result.frames.scored
        alone = await _round_trips(scorer, stills)
        videos = [asyncio.create_task(scorer.score(clip)) for _ in range(2)]
        await asyncio.sleep(0.05)
        beside = await _round_trips(scorer, stills)
        await asyncio.gather(*videos)
    median = statistics.median(latencies)
    return {
        "clip_bytes": len(clip), "clip_s": 30.0, "size": f"{args.width}x{args.height}",  # type: ignore[attr-defined]
        "frames_scored": frames, "video_latency_s_median": median,
        "video_latency_s_all": latencies, "frames_per_s": frames / median,
        "stills_alone_p50_ms": _p(alone, 0.5) * 1000, "stills_alone_p99_ms": _p(alone, 0.99) * 1000,
        "stills_beside_videos_p50_ms": _p(beside, 0.5) * 1000,
        "stills_beside_videos_p99_ms": _p(beside, 0.99) * 1000,
    }  # fmt: skip


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    model, flags = cpu_model()
    print(f"{model}, flags: {' '.join(flags)}")
    result = asyncio.run(run(args))
    for key, value in result.items():
        if key != "video_latency_s_all":
            print(f"{key:>30}: {value:.3f}" if isinstance(value, float) else f"{key:>30}: {value}")
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"video_bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"cpu_model": model, "flags": flags, **result}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
