"""PDQ as modstream publishes it: its distance from the C++ reference, and what hashing costs.

What it measures, for every image of a folder:

* the reference PDQ hash: the C++ reference (``pdqhash``) on every pixel of the full decode;
* the hash the scorer publishes in each mode (``prepare(..., PdqHashing.PLAIN)``: modstream's
  own implementation of the reference's function on the full decode) and its Hamming distance
  from the reference, over every image and over those of quality >= 80;
* the cost, one core, interleaved per image so both sides see the same machine, medians:
  ``prepare`` with and without hashing (plain, and with the 7 rotations) in each mode; and
  hashing a decoded picture with modstream's code against ``pdqhash`` on the same pixels.

Run by hand::

    python bench/pdq_from_decode.py bench/data/mixed
"""

from __future__ import annotations

import io
import json
import statistics
import time
from pathlib import Path

import numpy as np
import pdqhash
from benchlib import cpu_model, doc_parser
from PIL import Image

from modstream.models.decode import DecodeLimits
from modstream.models.pdq import PdqHashing, distance, hash_picture
from modstream.models.preprocess import Preprocessing, prepare

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LIMITS = DecodeLimits()


def _timed(data: bytes, mode: Preprocessing, hashing: PdqHashing) -> float:
    started = time.perf_counter()
    prepare(data, mode, LIMITS, hashing)
    return time.perf_counter() - started


def _best(call: object, runs: int = 3) -> float:
    assert callable(call)
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _reference_bits(pixels: np.ndarray) -> bytes:  # type: ignore[type-arg]
    vector, _quality = pdqhash.compute(pixels)
    return np.packbits(np.asarray(vector, np.uint8)).tobytes()


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, default=120, help="images to use (default 120)")
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.is_file())[: args.limit]
    model, flags = cpu_model()
    print(f"{model}, flags: {' '.join(flags)}; {len(files)} images from {args.folder}")
    rows: dict[str, dict[str, list[float]]] = {}
    ours_ms: list[float] = []
    theirs_ms: list[float] = []
    for path in files:
        with Image.open(io.BytesIO(path.read_bytes())) as image:
            picture = image.convert("RGB")
        pixels = np.ascontiguousarray(np.asarray(picture, dtype=np.uint8))
        ours_ms.append(_best(lambda: hash_picture(picture)))  # noqa: B023 - called at once
        theirs_ms.append(_best(lambda: _reference_bits(pixels)))  # noqa: B023
    for mode in Preprocessing:
        distances: list[float] = []
        distances_80: list[float] = []
        extra_plain: list[float] = []
        extra_dihedral: list[float] = []
        for path in files:
            data = path.read_bytes()
            with Image.open(io.BytesIO(data)) as image:
                pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
            reference = _reference_bits(pixels)
            prepared = prepare(data, mode, LIMITS, PdqHashing.PLAIN)
            assert prepared.pdq is not None
            distances.append(distance(prepared.pdq.bits, reference))
            if prepared.pdq.quality >= 80:
                distances_80.append(distances[-1])
            off = min(_timed(data, mode, PdqHashing.OFF) for _ in range(2))
            plain = min(_timed(data, mode, PdqHashing.PLAIN) for _ in range(2))
            dihedral = min(_timed(data, mode, PdqHashing.DIHEDRAL) for _ in range(2))
            extra_plain.append((plain - off) * 1000)
            extra_dihedral.append((dihedral - off) * 1000)
        rows[mode.value] = {"distance": distances, "distance_80": distances_80,
                            "plain_ms": extra_plain, "dihedral_ms": extra_dihedral}  # fmt: skip
    print(f"hashing a decoded picture, median: modstream {statistics.median(ours_ms):.2f} ms, "
          f"pdqhash {statistics.median(theirs_ms):.2f} ms")  # fmt: skip
    print(f"{'mode':<6} {'images':>6} {'max d':>6} {'mean d':>7} {'q>=80':>6} {'max d':>6} "
          f"{'+ms plain':>10} {'+ms 8 ways':>11}")  # fmt: skip
    summary: dict[str, object] = {
        "hash_ms_modstream": statistics.median(ours_ms),
        "hash_ms_pdqhash": statistics.median(theirs_ms),
    }
    for mode, row in rows.items():
        d, d80 = row["distance"], row["distance_80"]
        entry = {
            "images": len(d),
            "max_distance": max(d),
            "mean_distance": statistics.fmean(d),
            "quality_80": len(d80),
            "max_distance_quality_80": max(d80) if d80 else None,
            "extra_ms_plain": statistics.median(row["plain_ms"]),
            "extra_ms_dihedral": statistics.median(row["dihedral_ms"]),
        }
        summary[mode] = entry
        print(f"{mode:<6} {len(d):>6} {entry['max_distance']!s:>6} "
              f"{entry['mean_distance']:>7.2f} {len(d80):>6} "
              f"{entry['max_distance_quality_80']!s:>6} {entry['extra_ms_plain']:>10.2f} "
              f"{entry['extra_ms_dihedral']:>11.2f}")  # fmt: skip
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"pdq_from_decode-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"cpu_model": model, "flags": flags, "folder": str(args.folder),
                               "results": summary}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
