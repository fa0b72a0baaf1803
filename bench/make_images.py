"""Generate a reproducible corpus of synthetic, photo-like JPEG images.

The corpus is meant for benchmarking the decode + inference throughput of an
image-classification pipeline. No real photographs are available offline, so
the images are synthesised in a way that makes JPEG decode cost resemble that
of real camera photos:

* The base layer is 1/f^alpha ("pink") noise generated with an FFT. Natural
  images have a power spectrum that falls off roughly as 1/f^2, so this gives
  DCT coefficient statistics -- and therefore entropy-decoding cost -- close
  to those of real photographs, unlike flat colours (too cheap) or white
  noise (far too expensive).
* The noise channels are mixed through a random colour matrix around a random
  palette, so images are colourful rather than grey.
* A few smooth shapes, gradients and hard edges are composited in, mimicking
  objects and occlusion boundaries.
* A touch of full-resolution grain restores the high-frequency content lost
  by generating the noise at a lower resolution and upscaling it.

Sizes are 1-3 megapixels with common aspect ratios (both orientations), JPEG
quality is 80-95 with 4:2:0 chroma subsampling, and roughly 20% of the files
are progressive. Each image depends only on ``seed + index``, so the corpus
is fully deterministic, and files that already exist are skipped.

Usage::

    python bench/make_images.py OUT_DIR [--count 300] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFilter

FloatArray = npt.NDArray[np.float32]

# (width, height, relative frequency); portrait variants are drawn separately.
ASPECT_RATIOS: tuple[tuple[int, int, float], ...] = (
    (4, 3, 0.45),
    (3, 2, 0.2),
    (16, 9, 0.25),
    (1, 1, 0.1),
)
MIN_MEGAPIXELS = 1.0
MAX_MEGAPIXELS = 3.0
NOISE_LONG_SIDE = 1024
PROGRESSIVE_FRACTION = 0.2
QUALITY_RANGE = (80, 95)
WORKERS = 2


@dataclass(frozen=True)
class ImageSpec:
    """Parameters that fully describe one generated image."""

    width: int
    height: int
    quality: int
    progressive: bool


@dataclass(frozen=True)
class ImageResult:
    """Outcome of generating (or skipping) one image."""

    path: Path
    pixels: int
    nbytes: int
    created: bool


def choose_spec(rng: np.random.Generator) -> ImageSpec:
    """Pick a random size, aspect ratio, orientation and JPEG settings."""
    weights = np.array([w for _, _, w in ASPECT_RATIOS])
    choice = int(rng.choice(len(ASPECT_RATIOS), p=weights / weights.sum()))
    ratio_w, ratio_h, _ = ASPECT_RATIOS[choice]
    if ratio_w != ratio_h and rng.random() < 0.35:
        ratio_w, ratio_h = ratio_h, ratio_w  # portrait
    megapixels = rng.uniform(MIN_MEGAPIXELS, MAX_MEGAPIXELS)
    height = np.sqrt(megapixels * 1e6 * ratio_h / ratio_w)
    width = height * ratio_w / ratio_h
    low, high = QUALITY_RANGE
    return ImageSpec(
        width=int(round(width / 8) * 8),
        height=int(round(height / 8) * 8),
        quality=int(rng.integers(low, high + 1)),
        progressive=bool(rng.random() < PROGRESSIVE_FRACTION),
    )


def noise_shape(width: int, height: int) -> tuple[int, int]:
    """Return the (height, width) of the low-resolution noise field."""
    scale = NOISE_LONG_SIDE / max(width, height)
    return max(8, round(height * scale)), max(8, round(width * scale))


def pink_noise(
    rng: np.random.Generator,
    shape: tuple[int, int],
    alpha: float,
    channels: int,
    min_freq: float = 0.0,
) -> FloatArray:
    """Return ``channels`` fields of 1/f^alpha noise, each of unit variance.

    Frequencies (in cycles per pixel) below ``min_freq`` are removed, which
    turns the result into a high-pass detail layer.
    """
    rows, cols = shape
    fy = np.fft.fftfreq(rows).astype(np.float32)[:, None]
    fx = np.fft.rfftfreq(cols).astype(np.float32)[None, :]
    freq = np.sqrt(fx * fx + fy * fy)
    freq[0, 0] = 1.0
    amplitude = freq ** np.float32(-alpha / 2.0)
    amplitude[freq < min_freq] = 0.0
    amplitude[0, 0] = 0.0
    spectrum_shape = (channels, rows, cols // 2 + 1)
    real = rng.standard_normal(spectrum_shape, dtype=np.float32)
    imag = rng.standard_normal(spectrum_shape, dtype=np.float32)
    spectrum = (real + 1j * imag) * amplitude
    fields = np.fft.irfft2(spectrum, s=shape, axes=(1, 2))
    fields -= fields.mean(axis=(1, 2), keepdims=True)
    fields /= fields.std(axis=(1, 2), keepdims=True) + 1e-12
    return fields.astype(np.float32)


def colourise(rng: np.random.Generator, fields: FloatArray) -> FloatArray:
    """Map noise fields to correlated RGB via a random palette and mixing matrix."""
    base = rng.uniform(50.0, 200.0, size=3)
    luma_weights = rng.uniform(0.7, 1.3, size=3) * rng.uniform(25.0, 50.0)
    chroma = rng.normal(0.0, rng.uniform(6.0, 20.0), size=(3, fields.shape[0] - 1))
    mixing = np.concatenate([luma_weights[:, None], chroma], axis=1)
    rgb = np.tensordot(mixing, fields, axes=(1, 0)) + base[:, None, None]
    return np.moveaxis(rgb, 0, -1).astype(np.float32)


def random_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """Return a random RGB colour."""
    r, g, b = (int(v) for v in rng.integers(0, 256, size=3))
    return r, g, b


def gradient_layer(rng: np.random.Generator, shape: tuple[int, int]) -> FloatArray:
    """Return a linear colour gradient in a random direction."""
    rows, cols = shape
    angle = rng.uniform(0.0, 2.0 * np.pi)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    t = np.cos(angle) * xx / cols + np.sin(angle) * yy / rows
    t = (t - t.min()) / (t.max() - t.min() + 1e-6)
    start = np.array(random_colour(rng), dtype=np.float32)
    end = np.array(random_colour(rng), dtype=np.float32)
    gradient: FloatArray = (start + t[..., None] * (end - start)).astype(np.float32)
    return gradient


def draw_shape(rng: np.random.Generator, draw: ImageDraw.ImageDraw, size: tuple[int, int]) -> None:
    """Draw one random ellipse, polygon or rectangle onto a mask."""
    cols, rows = size
    x0, x1 = sorted(rng.uniform(-0.2, 1.2, size=2) * cols)
    y0, y1 = sorted(rng.uniform(-0.2, 1.2, size=2) * rows)
    kind = int(rng.integers(3))
    if kind == 0:
        draw.ellipse((x0, y0, x1, y1), fill=255)
    elif kind == 1:
        count = int(rng.integers(3, 8))
        xs = rng.uniform(-0.1, 1.1, size=count) * cols
        ys = rng.uniform(-0.1, 1.1, size=count) * rows
        draw.polygon([(float(x), float(y)) for x, y in zip(xs, ys, strict=True)], fill=255)
    else:
        draw.rectangle((x0, y0, x1, y1), fill=255)


def shape_mask(rng: np.random.Generator, shape: tuple[int, int]) -> FloatArray:
    """Return an alpha mask in [0, 1] with one shape, either sharp or soft-edged."""
    rows, cols = shape
    mask = Image.new("L", (cols, rows), 0)
    draw_shape(rng, ImageDraw.Draw(mask), (cols, rows))
    if rng.random() < 0.6:
        radius = float(rng.uniform(0.5, 0.03 * max(rows, cols)))
        mask = mask.filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(mask, dtype=np.float32) / 255.0


def composite_shapes(rng: np.random.Generator, canvas: FloatArray) -> FloatArray:
    """Blend a few textured shapes and gradients over the canvas."""
    shape = (canvas.shape[0], canvas.shape[1])
    if rng.random() < 0.5:
        weight = rng.uniform(0.2, 0.6)
        canvas = (1.0 - weight) * canvas + weight * gradient_layer(rng, shape)
    for _ in range(int(rng.integers(2, 7))):
        mask = shape_mask(rng, shape)[..., None] * rng.uniform(0.5, 1.0)
        texture = pink_noise(rng, shape, rng.uniform(1.8, 2.6), 1)[0]
        fill = np.array(random_colour(rng), dtype=np.float32)
        layer = fill + texture[..., None] * rng.uniform(5.0, 30.0)
        canvas = canvas * (1.0 - mask) + layer * mask
    return canvas.astype(np.float32)


def detail_layer(
    rng: np.random.Generator, shape: tuple[int, int], alpha: float, cutoff: float
) -> FloatArray:
    """Return full-resolution 1/f detail above ``cutoff``, stronger in some regions.

    This restores the fine texture that the low-resolution noise field lacks
    when upscaled, continuing the same 1/f^alpha spectrum. A smooth random
    envelope makes some regions textured and others smooth, as in real scenes.
    """
    rows, cols = shape
    if cutoff >= 0.5:
        return np.zeros((rows, cols, 1), dtype=np.float32)
    detail = pink_noise(rng, shape, alpha, 1, min_freq=cutoff)[0]
    envelope_field = pink_noise(rng, (32, 32), 2.5, 1)[0]
    envelope_small = np.clip(0.6 + 0.4 * envelope_field, 0.1, 1.0)
    envelope_image = Image.fromarray(envelope_small.astype(np.float32), "F")
    envelope = np.asarray(envelope_image.resize((cols, rows), Image.Resampling.BILINEAR))
    strength = rng.uniform(8.0, 16.0)
    layer: FloatArray = (detail * envelope * strength)[..., None].astype(np.float32)
    return layer


def add_grain(rng: np.random.Generator, pixels: FloatArray) -> Image.Image:
    """Add mildly colour-correlated fine grain at full resolution."""
    rows, cols = pixels.shape[:2]
    sigma = rng.uniform(1.5, 3.5)
    luma = rng.standard_normal((rows, cols, 1), dtype=np.float32)
    colour = rng.standard_normal((rows, cols, 3), dtype=np.float32)
    grainy = pixels + sigma * (0.8 * luma + 0.4 * colour)
    return Image.fromarray(np.clip(grainy, 0, 255).astype(np.uint8), "RGB")


def render(rng: np.random.Generator, spec: ImageSpec) -> Image.Image:
    """Render one synthetic photo according to ``spec``."""
    shape = noise_shape(spec.width, spec.height)
    alpha = rng.uniform(1.6, 2.3)
    fields = pink_noise(rng, shape, alpha, 3)
    canvas = composite_shapes(rng, colourise(rng, fields))
    small = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")
    full = small.resize((spec.width, spec.height), Image.Resampling.BICUBIC)
    pixels = np.asarray(full, dtype=np.float32)
    cutoff = 0.5 * shape[1] / spec.width
    pixels = pixels + detail_layer(rng, (spec.height, spec.width), alpha, cutoff)
    return add_grain(rng, pixels)


def generate_one(task: tuple[Path, int]) -> ImageResult:
    """Generate a single image file, skipping it if it already exists."""
    path, seed = task
    if path.exists():
        with Image.open(path) as existing:
            pixels = existing.width * existing.height
        return ImageResult(path, pixels, path.stat().st_size, created=False)
    rng = np.random.default_rng(seed)
    spec = choose_spec(rng)
    image = render(rng, spec)
    tmp = path.with_suffix(".tmp")
    image.save(
        tmp,
        format="JPEG",
        quality=spec.quality,
        progressive=spec.progressive,
        optimize=spec.progressive,
        subsampling="4:2:0",
    )
    os.replace(tmp, path)
    return ImageResult(path, spec.width * spec.height, path.stat().st_size, created=True)


def print_summary(results: list[ImageResult], elapsed: float) -> None:
    """Print count, size range, compression and timing statistics."""
    if not results:
        print("no images")
        return
    megapixels = np.array([r.pixels for r in results]) / 1e6
    nbytes = np.array([r.nbytes for r in results], dtype=np.float64)
    bpp = nbytes / (megapixels * 1e6)
    created = sum(r.created for r in results)
    print(f"images:        {len(results)} ({created} created, {len(results) - created} skipped)")
    mp_range = f"{megapixels.min():.2f} - {megapixels.max():.2f}"
    print(f"megapixels:    {mp_range} (mean {megapixels.mean():.2f})")
    print(f"bytes/pixel:   mean {bpp.mean():.3f} (min {bpp.min():.3f}, max {bpp.max():.3f})")
    print(f"total size:    {nbytes.sum() / 1e6:.1f} MB")
    print(f"time taken:    {elapsed:.1f} s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse command-line arguments."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path, help="directory to write photo_NNNN.jpg files into")
    parser.add_argument("--count", type=int, default=300, help="number of images (default: 300)")
    parser.add_argument("--seed", type=int, default=0, help="base random seed (default: 0)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Generate the corpus and print summary statistics."""
    args = parse_args(argv)
    out_dir: Path = args.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(out_dir / f"photo_{i:04d}.jpg", args.seed + i) for i in range(args.count)]
    start = time.perf_counter()
    with Pool(WORKERS) as pool:
        results = pool.map(generate_one, tasks, chunksize=1)
    print_summary(results, time.perf_counter() - start)


if __name__ == "__main__":
    main()
