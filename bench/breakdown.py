"""Where each core-millisecond per image goes in ``modstream score``'s fast path.

What it measures: the preprocessing steps of ``modstream.models.preprocess.prepare`` in ``fast``
mode, one by one, single-threaded, on every image of the corpus (``time.perf_counter`` around each
step; one thread, so wall time is core time):

* read: ``Path.read_bytes`` (the CLI's file read);
* sha256: the digest modstream puts in every result;
* open: ``modstream.models.decode.open_image`` (header parse and limit checks);
* cut progressive scans: fast mode decodes progressive JPEGs from their coarse scans only;
* decode: ``Image.draft("RGB", (256, 256))`` + ``load`` (DCT-domain downscaled JPEG decode);
* resize: the bilinear resize to 256x256 with ``reducing_gap=3``;
* crop + JPEG round trip: crop 224x224, encode at quality 75, decode again;
* array copy: ``np.asarray`` of the round-tripped crop, plus its share of ``np.stack`` into a
  batch of 8 (the scorer's dispatch copy).

The replicated steps are checked against ``prepare()`` on the first images, so the numbers describe
the code that runs. For comparison the same is timed for ``exact`` mode (full decode, plain
bilinear resize) and for the peer's ``opennsfw_onnx.preprocessing.preprocess``.

With ``--model-only`` (a ``bench/model_only.py`` JSON) the inference cost per image is added: the
OpenVINO THROUGHPUT figure at batch 8, as ``cores * 1000 / (img/s)`` core-ms; f32 for exact mode,
and for fast mode the precision of its screen lane (``--screen-precision``, bf16 by default, as
modstream screens with bf16 on CPUs that have it; the ~5 % of images whose screen score needs an
exact confirmation cost extra and land in "other"). With
``--cli`` (a ``bench/cli_vs_peer.py`` JSON) the measured CPU time (user + sys) and wall time of the
whole ``modstream score`` process are added, which gives the idle core-ms per image
(``cores * wall - cpu``) and the CPU not accounted for by the steps above (start-up, Python and
asyncio overhead, thread contention). Without these files only the preprocessing table is printed.

Run by hand::

    python bench/breakdown.py bench/data/photos
    python bench/breakdown.py bench/data/photos --model-only bench/results/model_only-X.json \\
        --cli bench/results/cli_vs_peer-Y.json
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import doc_parser
from opennsfw_onnx.preprocessing import preprocess as peer_preprocess
from PIL import Image

from modstream.models.decode import DecodeLimits, load_pixels, open_image
from modstream.models.jpeg_scans import coarse_progressive
from modstream.models.preprocess import CROP, RESIZE, Preprocessing, prepare

BENCH = Path(__file__).resolve().parent
RESULTS_DIR = BENCH / "results"
OFFSET = (RESIZE - CROP) // 2
CROP_BOX = (OFFSET, OFFSET, OFFSET + CROP, OFFSET + CROP)
FAST_REDUCING_GAP = 3.0  # modstream.models.preprocess._FAST_REDUCING_GAP
BATCH = 8
LIMITS = DecodeLimits()

Timings = dict[str, float]


class Clock:
    """Accumulates ``perf_counter`` laps into named steps."""

    def __init__(self) -> None:
        self.laps: Timings = {}
        self._last = time.perf_counter()

    def reset(self) -> None:
        self._last = time.perf_counter()

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.laps[step] = self.laps.get(step, 0.0) + (now - self._last)
        self._last = now


def round_trip_image(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")  # quality 75, as modstream and the reference do
    buffer.seek(0)
    decoded = Image.open(buffer)
    decoded.load()
    return decoded.convert("RGB")


def modstream_steps(path: Path, mode: Preprocessing) -> tuple[Timings, np.ndarray]:
    clock = Clock()
    data = path.read_bytes()
    clock.lap("read")
    hashlib.sha256(data).hexdigest()
    clock.lap("sha256")
    image = open_image(data, LIMITS)
    clock.lap("open")
    if mode is Preprocessing.FAST and image.format in ("JPEG", "MPO"):
        coarse = coarse_progressive(data)
        if coarse is not None:
            image = open_image(coarse, LIMITS)
        clock.lap("cut progressive scans")
        image.draft("RGB", (RESIZE, RESIZE))
    load_pixels(image)
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    clock.lap("decode")
    if mode is Preprocessing.FAST:
        resized = rgb.resize(
            (RESIZE, RESIZE), Image.Resampling.BILINEAR, reducing_gap=FAST_REDUCING_GAP
        )
    else:
        resized = rgb.resize((RESIZE, RESIZE), Image.Resampling.BILINEAR)
    clock.lap("resize")
    decoded = round_trip_image(resized.crop(CROP_BOX))
    clock.lap("crop + JPEG round trip")
    pixels = np.ascontiguousarray(np.asarray(decoded, dtype=np.uint8))
    clock.lap("array copy")
    return clock.laps, pixels


def stack_cost(pixels: np.ndarray, repeats: int = 200) -> float:
    """Seconds per image of ``np.stack`` over a batch of ``BATCH`` crops."""
    crops = [pixels.copy() for _ in range(BATCH)]
    started = time.perf_counter()
    for _ in range(repeats):
        np.stack(crops)
    return (time.perf_counter() - started) / (repeats * BATCH)


def peer_steps(path: Path) -> Timings:
    clock = Clock()
    peer_preprocess(str(path))
    clock.lap("peer preprocess")
    return clock.laps


def time_corpus(
    paths: list[Path], step: Callable[[Path], Timings], rounds: int
) -> dict[str, dict[str, float]]:
    """Mean and median milliseconds per image of every step, best of ``rounds`` passes."""
    best: dict[str, list[float]] = {}
    for _ in range(rounds):
        per_step: dict[str, list[float]] = {}
        for path in paths:
            for name, seconds in step(path).items():
                per_step.setdefault(name, []).append(seconds * 1000)
        for name, values in per_step.items():
            if name not in best or sum(values) < sum(best[name]):
                best[name] = values
    return {
        name: {"mean_ms": statistics.fmean(values), "median_ms": statistics.median(values)}
        for name, values in best.items()
    }


def check_replica(paths: list[Path], mode: Preprocessing) -> None:
    for path in paths[:5]:
        _, pixels = modstream_steps(path, mode)
        reference = prepare(path.read_bytes(), mode, LIMITS).pixels
        if not np.array_equal(pixels, reference):
            raise SystemExit(f"replicated {mode} steps differ from prepare() on {path}")


def inference_core_ms(model_only: Path, engine: str = "ov-f32-throughput") -> tuple[float, float]:
    payload = json.loads(model_only.read_text(encoding="utf-8"))
    cores = int(payload["machine"]["cpu_count"])
    for result in payload["results"]:
        if result["engine"] == engine and result["batch"] == BATCH:
            img_s = float(result["median_img_s"])
            return cores * 1000.0 / img_s, img_s
    raise SystemExit(f"{model_only} has no {engine} result at batch {BATCH}")


def cli_figures(cli: Path, variant: str) -> dict[str, Any]:
    payload = json.loads(cli.read_text(encoding="utf-8"))
    entry = payload["summary"][variant]
    images = int(payload["images"])
    cores = int(payload["machine"]["cpu_count"])
    startup = payload.get("startup", {}).get(variant)
    return {
        "images": images,
        "cores": cores,
        "wall_s": entry["median_wall_s"],
        "cpu_s": entry["median_cpu_s"],
        "available_core_ms": cores * entry["median_wall_s"] * 1000 / images,
        "cpu_core_ms": entry["median_cpu_s"] * 1000 / images,
        "startup_cpu_core_ms": (startup["cpu_s"] * 1000 / images) if startup else None,
        "startup_wall_s": startup["wall_s"] if startup else None,
    }


def latest(prefix: str) -> Path | None:
    found = sorted(RESULTS_DIR.glob(f"{prefix}-*.json"))
    return found[-1] if found else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = doc_parser(__doc__)
    parser.add_argument(
        "folder", type=Path, nargs="?", default=BENCH / "data" / "photos", metavar="DIR"
    )
    parser.add_argument("--rounds", type=int, default=2, help="passes over the corpus; best kept")
    parser.add_argument("--model-only", type=Path, default=None, help="model_only JSON")
    parser.add_argument("--cli", type=Path, default=None, help="cli_vs_peer JSON")
    parser.add_argument(
        "--screen-precision",
        choices=["f32", "bf16"],
        default="bf16",
        help="inference precision charged to the fast path (modstream's fast mode screens with "
        "bf16 where the CPU has it; default: bf16)",
    )
    parser.add_argument(
        "--latest", action="store_true", help="use the newest JSON files in bench/results"
    )
    parser.add_argument("--out", type=Path, default=None, help="JSON file (default: bench/results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    paths = sorted(p for p in args.folder.rglob("*.jp*g") if p.is_file())
    if not paths:
        raise SystemExit(f"no JPEGs in {args.folder}; run bench/make_images.py first")
    model_only = args.model_only or (latest("model_only") if args.latest else None)
    cli = args.cli or (latest("cli_vs_peer") if args.latest else None)
    for mode in Preprocessing:
        check_replica(paths, mode)

    fast = time_corpus(paths, lambda p: modstream_steps(p, Preprocessing.FAST)[0], args.rounds)
    exact = time_corpus(paths, lambda p: modstream_steps(p, Preprocessing.EXACT)[0], args.rounds)
    peer = time_corpus(paths, peer_steps, args.rounds)
    _, sample = modstream_steps(paths[0], Preprocessing.FAST)
    stack_ms = stack_cost(sample) * 1000
    for table in (fast, exact):
        table["array copy"]["mean_ms"] += stack_ms
        table["array copy"]["median_ms"] += stack_ms

    print(f"{len(paths)} images, single thread, ms per image (mean / median)")
    print(f"{'step':<26} {'fast':>15} {'exact':>15}")
    absent = {"mean_ms": 0.0, "median_ms": 0.0}  # steps only fast mode has
    for step in fast:
        f, e = fast[step], exact.get(step, absent)
        print(
            f"{step:<26} {f['mean_ms']:>7.2f} /{f['median_ms']:>6.2f} "
            f"{e['mean_ms']:>7.2f} /{e['median_ms']:>6.2f}"
        )
    fast_total = sum(v["mean_ms"] for v in fast.values())
    exact_total = sum(v["mean_ms"] for v in exact.values())
    print(f"{'preprocessing total':<26} {fast_total:>7.2f}{'':>8} {exact_total:>7.2f}")
    peer_ms = peer["peer preprocess"]["mean_ms"]
    print(f"peer preprocess (read..float BGR array): {peer_ms:.2f} ms mean")

    report: dict[str, Any] = {
        "benchmark": "breakdown",
        "images": len(paths),
        "cpu_count": os.cpu_count(),
        "fast": fast,
        "exact": exact,
        "peer": peer,
        "stack_ms_per_image": stack_ms,
    }
    if model_only is not None:
        infer_ms, img_s = inference_core_ms(model_only)
        print(
            f"inference (OpenVINO f32 THROUGHPUT, batch {BATCH}, {img_s:.1f} img/s): "
            f"{infer_ms:.2f} core-ms per image"
        )
        report["inference_core_ms"] = infer_ms
        screen_ms = infer_ms
        if args.screen_precision == "bf16":
            screen_ms, screen_img_s = inference_core_ms(model_only, "ov-bf16-throughput")
            print(
                f"inference (OpenVINO bf16 THROUGHPUT, batch {BATCH}, {screen_img_s:.1f} img/s): "
                f"{screen_ms:.2f} core-ms per image (fast mode's screen lane)"
            )
        report["screen_inference_core_ms"] = screen_ms
        if cli is not None:
            for variant, steps_total, model_ms in (
                ("fast", fast_total, screen_ms),
                ("exact", exact_total, infer_ms),
            ):
                figures = cli_figures(cli, variant)
                accounted = steps_total + model_ms
                other = figures["cpu_core_ms"] - accounted
                idle = figures["available_core_ms"] - figures["cpu_core_ms"]
                print(
                    f"modstream score ({variant}): {figures['available_core_ms']:.1f} core-ms "
                    f"available per image ({figures['cores']} cores x {figures['wall_s']:.2f} s"
                    f" / {figures['images']}), {figures['cpu_core_ms']:.1f} used (preprocessing "
                    f"{steps_total:.1f} + inference {model_ms:.1f} + other {other:.1f}), "
                    f"idle {idle:.1f}"
                )
                if figures["startup_cpu_core_ms"] is not None:
                    print(
                        f"  start-up (1-image run): {figures['startup_wall_s']:.2f} s wall, "
                        f"{figures['startup_cpu_core_ms']:.1f} core-ms per image over "
                        f"{figures['images']}"
                    )
                report[f"cli_{variant}"] = {
                    **figures,
                    "preprocessing_core_ms": steps_total,
                    "inference_core_ms": model_ms,
                    "other_core_ms": other,
                    "idle_core_ms": idle,
                }
    out = args.out or RESULTS_DIR / f"breakdown-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
