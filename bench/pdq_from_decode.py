"""PDQ from the scorer's decode: how far from the reference hash, and what hashing adds.

What it measures, for every image of a folder:

* the reference PDQ hash: the C++ reference (``pdqhash``) on every pixel of the full image, as
  ``modstream hash`` computes it;
* the hash the scorer computes in each mode (``prepare(..., PdqHashing.PLAIN)``: from its own
  decode, box-reduced to a short side of 256-511 pixels) and its Hamming distance from the
  reference; the PDQ authors call an implementation compatible when hashes of quality >= 80 lie
  within distance 10;
* the cost: ``prepare`` with and without hashing (plain and with the 7 rotations), one core,
  interleaved per image so both see the same machine; reported as the median extra
  milliseconds per image.

Run by hand::

    python bench/pdq_from_decode.py bench/data/mixed
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from benchlib import cpu_model, doc_parser

from modstream.models.decode import DecodeLimits
from modstream.models.pdq import PdqHashing, distance
from modstream.models.preprocess import Preprocessing, hash_image, prepare

RESULTS_DIR = Path(__file__).resolve().parent / "results"
LIMITS = DecodeLimits()


def _timed(data: bytes, mode: Preprocessing, hashing: PdqHashing) -> float:
    started = time.perf_counter()
    prepare(data, mode, LIMITS, hashing)
    return time.perf_counter() - started


def main() -> None:
    parser = doc_parser(__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--limit", type=int, default=120, help="images to use (default 120)")
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.is_file())[: args.limit]
    model, flags = cpu_model()
    print(f"{model}, flags: {' '.join(flags)}; {len(files)} images from {args.folder}")
    rows: dict[str, dict[str, list[float]]] = {}
    for mode in Preprocessing:
        distances: list[float] = []
        extra_plain: list[float] = []
        extra_dihedral: list[float] = []
        for path in files:
            data = path.read_bytes()
            reference = hash_image(data, LIMITS, reference=True).pdq
            prepared = prepare(data, mode, LIMITS, PdqHashing.PLAIN)
            assert prepared.pdq is not None
            if reference.quality >= 80:
                distances.append(distance(prepared.pdq.bits, reference.bits))
            off = min(_timed(data, mode, PdqHashing.OFF) for _ in range(2))
            plain = min(_timed(data, mode, PdqHashing.PLAIN) for _ in range(2))
            dihedral = min(_timed(data, mode, PdqHashing.DIHEDRAL) for _ in range(2))
            extra_plain.append((plain - off) * 1000)
            extra_dihedral.append((dihedral - off) * 1000)
        rows[mode.value] = {"distance": distances, "plain_ms": extra_plain,
                            "dihedral_ms": extra_dihedral}  # fmt: skip
    print(f"{'mode':<6} {'q>=80':>6} {'max d':>6} {'mean d':>7} {'p90 d':>6} {'<=10':>6} "
          f"{'+ms plain':>10} {'+ms 8 ways':>11}")  # fmt: skip
    summary = {}
    for mode, row in rows.items():
        d = sorted(row["distance"])
        within = sum(x <= 10 for x in d) / len(d) if d else float("nan")
        entry = {
            "hashed_at_quality_80": len(d),
            "max_distance": max(d) if d else None,
            "mean_distance": statistics.fmean(d) if d else None,
            "p90_distance": d[int(0.9 * (len(d) - 1))] if d else None,
            "share_within_10": within,
            "extra_ms_plain": statistics.median(row["plain_ms"]),
            "extra_ms_dihedral": statistics.median(row["dihedral_ms"]),
        }
        summary[mode] = entry
        print(f"{mode:<6} {len(d):>6} {entry['max_distance']!s:>6} "
              f"{entry['mean_distance'] or 0:>7.1f} {entry['p90_distance']!s:>6} "
              f"{within:>6.0%} {entry['extra_ms_plain']:>10.2f} "
              f"{entry['extra_ms_dihedral']:>11.2f}")  # fmt: skip
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"pdq_from_decode-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"cpu_model": model, "flags": flags, "folder": str(args.folder),
                               "modes": summary}, indent=2) + "\n")  # fmt: skip
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
