"""A varied, deterministic corpus for PDQ parity: the kinds of image whose hashes drift first.

Photos (smooth colour fields with objects and grain, and pink-noise detail), textures, smooth
gradients (the hardest case: their DCT coefficients crowd the median), greyscale and CMYK JPEGs,
palette GIFs and PNGs, screenshots with text, transparent PNGs, tiny and huge images, baseline
and progressive JPEGs at quality 80-95, in both orientations. Every image depends on its seed
only, so a distance that fails reproduces. Built in memory (about 20 s for the whole set).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

__all__ = ["Picture", "corpus", "variants"]

Pixels = npt.NDArray[np.uint8]


@dataclass(frozen=True, slots=True)
class Picture:
    name: str
    data: bytes  # the encoded file
    kind: str  # photo, texture, gradient, grey, cmyk, palette, screenshot, alpha, tiny, huge


def _field(
    rng: np.random.Generator, width: int, height: int, alpha: float
) -> npt.NDArray[np.float64]:
    """1/f^alpha noise, zero mean, unit deviation: natural images fall off as about 1/f^2."""
    h, w = min(height, 512), min(width, 512)
    spectrum = rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    radius = np.hypot(fy, fx)
    radius[0, 0] = 1.0
    noise = np.real(np.fft.ifft2(spectrum / radius ** (alpha / 2)))
    noise = (noise - noise.mean()) / (noise.std() or 1.0)
    if (h, w) != (height, width):
        image = Image.fromarray(noise.astype(np.float32), mode="F")
        noise = np.asarray(image.resize((width, height), Image.Resampling.BICUBIC), np.float64)
    return noise


def _photo(seed: int, width: int, height: int) -> Pixels:
    rng = np.random.default_rng(seed)
    fields = np.stack([_field(rng, width, height, 2.0) for _ in range(3)], axis=-1)
    mix = rng.normal(0, 30, size=(3, 3)) + np.eye(3) * 25
    picture = 128 + rng.uniform(-50, 50, size=3) + fields @ mix
    image = Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = rng.uniform(0, 0.8) * width, rng.uniform(0, 0.8) * height
        x1 = x0 + rng.uniform(0.05, 0.4) * width
        y1 = y0 + rng.uniform(0.05, 0.4) * height
        colour = tuple(int(c) for c in rng.integers(0, 256, size=3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    pixels = np.asarray(image, np.float64) + rng.normal(0, 4, size=(height, width, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _texture(seed: int, width: int, height: int) -> Pixels:
    rng = np.random.default_rng(seed)
    alpha = float(rng.uniform(0.3, 1.2))  # much flatter than a photo: detail at every scale
    grey = 128 + 60 * _field(rng, width, height, alpha)
    tint = rng.uniform(0.6, 1.0, size=3)
    return np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)


def _gradient(seed: int, width: int, height: int) -> Pixels:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / (width - 1), y / (height - 1)
    shape = seed % 3
    if shape == 0:  # linear, at an angle
        angle = rng.uniform(0, np.pi)
        t = u * np.cos(angle) + v * np.sin(angle)
    elif shape == 1:  # radial
        cx, cy = rng.uniform(0.2, 0.8, size=2)
        t = np.hypot(u - cx, v - cy)
    else:  # two soft blobs on a ramp
        t = 0.5 * u + 0.3 * np.exp(-((u - 0.3) ** 2 + (v - 0.6) ** 2) / 0.05)
        t += 0.2 * np.exp(-((u - 0.7) ** 2 + (v - 0.3) ** 2) / 0.02)
    t = (t - t.min()) / (np.ptp(t) or 1.0)
    low, high = rng.uniform(0, 90, size=3), rng.uniform(160, 255, size=3)
    return (low + (high - low) * t[..., None]).astype(np.uint8)


def _screenshot(seed: int, width: int, height: int) -> Pixels:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (width, height), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, width, height // 12), fill=(40, 60, 120))  # a title bar
    font = ImageFont.load_default(size=max(10, height // 40))
    words = ["moderation", "queue", "review", "flagged", "safe", "image", "score", "policy"]
    y = height // 10
    while y < height - 20:
        x = int(width * rng.uniform(0.03, 0.1))
        line = " ".join(rng.choice(words, size=int(rng.integers(3, 9))))
        draw.text((x, y), line, fill=(20, 20, 20), font=font)
        if rng.random() < 0.15:  # a button
            bx = int(width * rng.uniform(0.5, 0.8))
            draw.rectangle((bx, y, bx + width // 8, y + height // 30), fill=(0, 120, 215))
        y += int(height / 40 * rng.uniform(1.3, 2.2))
    return np.asarray(image)


def _jpeg(pixels: Pixels | Image.Image, quality: int, *, progressive: bool = False) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, progressive=progressive)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _gif(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.quantize(colors=128).save(buffer, "GIF")
    return buffer.getvalue()


_SIZES = [(640, 480), (1024, 768), (1280, 960), (1600, 1200), (1920, 1080), (2400, 1600),
          (3000, 2000), (800, 1200), (1080, 1920), (1500, 1500)]  # fmt: skip


@functools.cache
def corpus() -> tuple[Picture, ...]:
    """About 60 images, every kind at several sizes."""
    pictures: list[Picture] = []

    def add(kind: str, name: str, data: bytes) -> None:
        pictures.append(Picture(f"{kind}-{name}", data, kind))

    makers: list[tuple[str, Callable[[int, int, int], Pixels]]] = [
        ("photo", _photo), ("texture", _texture), ("gradient", _gradient),
    ]  # fmt: skip
    seed = 0
    for kind, make in makers:
        for index, (width, height) in enumerate(_SIZES):
            seed += 1
            quality = (80, 85, 90, 95)[index % 4]
            progressive = index % 3 == 2
            data = _jpeg(make(seed, width, height), quality, progressive=progressive)
            add(kind, f"{width}x{height}-q{quality}{'-p' if progressive else ''}", data)
    for index, (width, height) in enumerate([(3000, 2000), (1600, 1200), (1200, 1200)]):
        source = _photo(100 + index, width, height) if index != 1 else _texture(100, width, height)
        add("grey", f"{width}x{height}", _jpeg(Image.fromarray(source).convert("L"), 90))
    for index, (width, height) in enumerate([(2000, 1333), (1024, 768)]):
        cmyk = Image.fromarray(_photo(110 + index, width, height)).convert("CMYK")
        add("cmyk", f"{width}x{height}", _jpeg(cmyk, 90))
    for index, (width, height) in enumerate([(800, 600), (1200, 900)]):
        image = Image.fromarray(_photo(120 + index, width, height))
        add("palette", f"{width}x{height}.gif", _gif(image))
        add("palette", f"{width}x{height}.png", _png(image.quantize(colors=64)))
    for index, (width, height) in enumerate([(1280, 800), (1920, 1080), (750, 1334)]):
        shot = _screenshot(130 + index, width, height)
        add("screenshot", f"{width}x{height}.png", _png(Image.fromarray(shot)))
        add("screenshot", f"{width}x{height}.jpg", _jpeg(shot, 85))
    rgba = Image.fromarray(_photo(140, 1000, 800)).convert("RGBA")
    rgba.putalpha(Image.fromarray(_gradient(141, 1000, 800)[..., 0]))
    add("alpha", "1000x800.png", _png(rgba))
    for index, (width, height) in enumerate([(32, 32), (64, 48), (100, 80), (160, 120)]):
        add("tiny", f"{width}x{height}", _jpeg(_photo(150 + index, width, height), 90))
    add("huge", "6000x4000", _jpeg(_photo(160, 6000, 4000), 85))
    add("huge", "4000x6000-texture", _jpeg(_texture(161, 4000, 6000), 90))
    return tuple(pictures)


def variants(data: bytes) -> list[tuple[str, bytes]]:
    """Copies a bank should still match: resized, re-encoded, cropped, brightened."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = image.size
    half = image.resize((width // 2, height // 2), Image.Resampling.LANCZOS)
    cropped = image.crop((width // 20, height // 20, width - width // 20, height - height // 20))
    brighter = np.clip(np.asarray(image, np.int16) + 25, 0, 255).astype(np.uint8)
    return [
        ("half", _jpeg(half, 85)),
        ("reencoded-q70", _jpeg(image, 70)),
        ("crop-5%", _jpeg(cropped, 90)),
        ("brighter", _jpeg(brighter, 90)),
        ("png", _png(image)),
    ]
