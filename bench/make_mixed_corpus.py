"""A score-heavy benchmark corpus: half photo-like JPEGs, half re-rendered score-ladder images.

Photo-like noise images score near zero, so a corpus of them alone never exercises fast mode's
confirmations. A moderation stream is full of people, skin and art: a third to a half of its
images score >= 0.05. This corpus copies ``--photos`` photo-like JPEGs (from
``bench/make_images.py``) and adds as many variants of the 24 synthetic score-ladder images
(``tests/fixtures/ladder``, scores 0.02-0.98): each upscaled to 1-3 MP with a common aspect ratio
(both orientations), a slight brightness change and +-3 grey levels of grain, saved at JPEG
quality 80-95, 20 % progressive. Deterministic from ``--seed``. Measured on the default corpus
(240 images): 50 % score >= 0.05 with the reference preprocessing.

    python bench/make_mixed_corpus.py bench/data/mixed --photos bench/data/photos --count 240
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

LADDER = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ladder"
ASPECTS = (4 / 3, 3 / 2, 16 / 9, 1.0)


def ladder_variant(source: Path, index: int, rng: random.Random) -> Image.Image:
    image = Image.open(source).convert("RGB")
    pixels = rng.uniform(1.0, 3.0) * 1e6
    aspect = rng.choice(ASPECTS)
    if rng.random() < 0.5:
        aspect = 1 / aspect
    width = int((pixels * aspect) ** 0.5)
    height = int(pixels / width)
    image = image.resize((width, height), Image.Resampling.BICUBIC)
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.95, 1.05))
    grain = np.random.default_rng(index).integers(-3, 4, (height, width, 3))
    noisy = np.asarray(image).astype(np.int16) + grain
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--photos", type=Path, default=Path("bench/data/photos"))
    parser.add_argument("--count", type=int, default=240)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    photos = sorted(args.photos.glob("*.jpg"))[: args.count // 2]
    if len(photos) < args.count // 2:
        raise SystemExit(f"need {args.count // 2} photos in {args.photos} (bench/make_images.py)")
    for photo in photos:
        shutil.copy(photo, args.out_dir / photo.name)
    ladder = sorted(LADDER.glob("*.png"))
    for index in range(args.count - len(photos)):
        source = ladder[index % len(ladder)]
        variant = ladder_variant(source, index, rng)
        variant.save(
            args.out_dir / f"ladder_{source.stem}_{index:04d}.jpg",
            quality=rng.randint(80, 95),
            progressive=rng.random() < 0.2,
        )
    print(f"wrote {args.count} images to {args.out_dir}")


if __name__ == "__main__":
    main()
