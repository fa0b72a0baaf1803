"""How far fast mode's screen scores are from the reference, per route, by score band.

Every image of the given folders is scored on the reference route (exact decode, f32) and on each
screen route with no confirmation at all (confirm_at above 1: the screen score is final), and the
script reports |screen - reference|: mean, p99 and max overall and per band of the reference
score, and how many decisions at the presets' thresholds would change. The largest error is the
margin a decision-aware confirmation needs on this CPU class (a screen score farther than it from
every threshold cannot change a decision). Errors are deterministic: unlike the speed benchmarks,
this needs no idle machine.

Routes: ``dct-bf16`` (DCT-domain JPEG downscaling, bf16: today's screen), ``exact-bf16`` (the
reference decode, bf16), ``dct-f32`` (DCT downscaling, f32).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from benchlib import cpu_model, doc_parser

from modstream.models.device_spec import DeviceSpec
from modstream.models.preprocess import Preprocessing
from modstream.pipeline.moderate.policy import PRESETS
from modstream.pipeline.moderate.window import in_order
from modstream.pipeline.score.scorer import Scorer, ScorerConfig

BANDS = ((0.0, 0.05), (0.05, 0.3), (0.3, 0.7), (0.7, 1.01))
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp"}


def routes(cache_dir: Path | None) -> dict[str, ScorerConfig]:
    base = ScorerConfig(cache_dir=cache_dir, confirm_at=1.0, screening="always")
    return {
        "reference": dataclasses.replace(base, preprocessing=Preprocessing.EXACT),
        "dct-bf16": dataclasses.replace(base, screen_precision="bf16"),
        "exact-bf16": dataclasses.replace(
            base, preprocessing=Preprocessing.EXACT, devices=(DeviceSpec(precision="bf16"),)
        ),
        "dct-f32": dataclasses.replace(base, screen_precision=None),
    }


async def scores(config: ScorerConfig, images: list[Path]) -> tuple[np.ndarray, list[str]]:
    async with await Scorer.start(config) as scorer:
        results = [r async for r in in_order(images, scorer.score, size=config.max_pending)]
    return np.array([r.nsfw for r in results]), [
        f"{r.preprocessing}/{r.precision}" for r in results
    ]


def summary(reference: np.ndarray, screened: np.ndarray) -> dict[str, Any]:
    delta = np.abs(screened - reference)
    out: dict[str, Any] = {
        "n": int(delta.size),
        "mean": round(float(delta.mean()), 5),
        "p99": round(float(np.percentile(delta, 99)), 5),
        "max": round(float(delta.max()), 5),
        "bands": {},
        "decision_changes": {},
    }
    for low, high in BANDS:
        inside = (reference >= low) & (reference < high)
        if inside.any():
            part = delta[inside]
            out["bands"][f"{low:g}-{min(high, 1):g}"] = {
                "n": int(part.size),
                "mean": round(float(part.mean()), 5),
                "max": round(float(part.max()), 5),
            }
    for name, policy in PRESETS.items():
        before = [policy.decide(float(s)) for s in reference]
        after = [policy.decide(float(s)) for s in screened]
        out["decision_changes"][name] = sum(b != a for b, a in zip(before, after, strict=True))
    return out


async def main() -> int:
    parser = doc_parser(__doc__)
    parser.add_argument("folders", nargs="+", type=Path, help="folders of images (recursive)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="OpenVINO model cache")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args()
    images = sorted(
        path for folder in args.folders for path in folder.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
    )  # fmt: skip
    if not images:
        print("no images in the given folders", file=sys.stderr)
        return 2
    model, flags = cpu_model()
    configs = routes(args.cache_dir)
    reference, _ = await scores(configs.pop("reference"), images)
    report: dict[str, Any] = {
        "cpu": model,
        "flags": flags,
        "images": len(images),
        "share_at_or_above_0.05": round(float((reference >= 0.05).mean()), 3),
        "routes": {},
    }
    for name, config in configs.items():
        screened, ran = await scores(config, images)
        report["routes"][name] = {"ran_as": sorted(set(ran)), **summary(reference, screened)}
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
