"""Test images built in memory with PIL and numpy: every supported format, and hostile inputs.

Nothing here touches the disk or the network. Every builder is deterministic (fixed seeds), so a
failure reproduces. Supported-format builders return :class:`Sample` objects (cached: build once,
share read-only) that also carry the RGB picture the bytes show, so a decoder can be checked
against what was drawn.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

RGBArray = npt.NDArray[np.uint8]

WIDTH, HEIGHT = 320, 240  # deliberately not square, so width/height mix-ups show
LARGE_WIDTH, LARGE_HEIGHT = 2000, 1500

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True, slots=True)
class Sample:
    """Encoded bytes plus what a correct decoder must report and (roughly) see."""

    name: str
    data: bytes
    width: int
    height: int
    format: str  # PIL's format name, as modstream reports it
    expected_rgb: RGBArray  # the picture the bytes depict, as 8-bit RGB (read-only)

    def __post_init__(self) -> None:
        self.expected_rgb.setflags(write=False)  # samples are cached and shared between tests


# --------------------------------------------------------------------------------------------
# pictures


def photo_like(width: int = WIDTH, height: int = HEIGHT, *, seed: int = 0) -> RGBArray:
    """A smooth, photo-like RGB picture: colour gradients, a few soft blobs, mild grain."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    red = 60 + 150 * u
    green = 40 + 120 * v
    blue = 200 - 140 * u * v
    picture = np.stack([red, green, blue], axis=-1)
    for _ in range(4):
        cx, cy = rng.uniform(0.15, 0.85, size=2)
        radius = rng.uniform(0.08, 0.25)
        colour = rng.uniform(0, 255, size=3).astype(np.float32)
        weight = np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / (2 * radius**2))[..., None]
        picture = picture * (1 - weight) + colour * weight
    picture += rng.normal(0, 3, size=picture.shape).astype(np.float32)
    return np.clip(picture, 0, 255).astype(np.uint8)


def grey_of(rgb: RGBArray) -> RGBArray:
    """The picture as PIL's L conversion sees it, expanded back to three equal channels."""
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    return np.repeat(grey[..., None], 3, axis=-1)


def _encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------
# supported formats


@functools.cache
def jpeg_baseline(width: int = WIDTH, height: int = HEIGHT, *, quality: int = 90) -> Sample:
    rgb = photo_like(width, height, seed=1)
    data = _encode(Image.fromarray(rgb), "JPEG", quality=quality)
    return Sample("jpeg_baseline", data, width, height, "JPEG", rgb)


@functools.cache
def jpeg_progressive() -> Sample:
    rgb = photo_like(seed=2)
    data = _encode(Image.fromarray(rgb), "JPEG", quality=90, progressive=True)
    return Sample("jpeg_progressive", data, WIDTH, HEIGHT, "JPEG", rgb)


@functools.cache
def jpeg_grayscale() -> Sample:
    rgb = photo_like(seed=3)
    data = _encode(Image.fromarray(rgb).convert("L"), "JPEG", quality=90)
    return Sample("jpeg_grayscale", data, WIDTH, HEIGHT, "JPEG", grey_of(rgb))


@functools.cache
def jpeg_cmyk() -> Sample:
    rgb = photo_like(seed=4)
    data = _encode(Image.fromarray(rgb).convert("CMYK"), "JPEG", quality=90)
    return Sample("jpeg_cmyk", data, WIDTH, HEIGHT, "JPEG", rgb)


@functools.cache
def jpeg_large() -> Sample:
    """A 2000x1500 photo-like JPEG: large enough for DCT-domain downscaling to matter."""
    rgb = photo_like(LARGE_WIDTH, LARGE_HEIGHT, seed=5)
    data = _encode(Image.fromarray(rgb), "JPEG", quality=88)
    return Sample("jpeg_large", data, LARGE_WIDTH, LARGE_HEIGHT, "JPEG", rgb)


@functools.cache
def png_rgb() -> Sample:
    rgb = photo_like(seed=6)
    return Sample("png_rgb", _encode(Image.fromarray(rgb), "PNG"), WIDTH, HEIGHT, "PNG", rgb)


def sixteen_bit_grey(width: int = WIDTH, height: int = HEIGHT) -> npt.NDArray[np.uint16]:
    """A 16-bit greyscale horizontal ramp from 4096 to 61440 with a soft vertical wave."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    ramp = 4096 + (61440 - 4096) * x / (width - 1)
    wave = 3000 * np.sin(2 * np.pi * y / height)
    return np.clip(ramp + wave, 0, 65535).astype(np.uint16)


@functools.cache
def png_grey16() -> Sample:
    """PNG with 16 bits per sample, greyscale: PIL opens it in an ``I;16``-family mode."""
    wide = sixteen_bit_grey()
    image = Image.fromarray(wide)
    assert image.mode.startswith("I;16"), image.mode
    narrow = (wide >> 8).astype(np.uint8)
    expected = np.repeat(narrow[..., None], 3, axis=-1)
    return Sample("png_grey16", _encode(image, "PNG"), WIDTH, HEIGHT, "PNG", expected)


@functools.cache
def png_palette() -> Sample:
    rgb = photo_like(seed=7)
    image = Image.fromarray(rgb).quantize(colors=256)
    assert image.mode == "P"
    shown = np.asarray(image.convert("RGB"))
    return Sample("png_palette", _encode(image, "PNG"), WIDTH, HEIGHT, "PNG", shown)


@functools.cache
def png_rgba() -> Sample:
    """RGBA with a real alpha ramp; the colour under the alpha is what open_nsfw is shown."""
    rgb = photo_like(seed=8)
    alpha = np.linspace(0, 255, WIDTH, dtype=np.float32).astype(np.uint8)
    alpha = np.broadcast_to(alpha, (HEIGHT, WIDTH))
    rgba = np.dstack([rgb, alpha])
    data = _encode(Image.fromarray(rgba, mode="RGBA"), "PNG")
    return Sample("png_rgba", data, WIDTH, HEIGHT, "PNG", rgb)


@functools.cache
def png_la() -> Sample:
    rgb = photo_like(seed=9)
    grey = np.asarray(Image.fromarray(rgb).convert("L"))
    alpha = np.full_like(grey, 200)
    data = _encode(Image.fromarray(np.dstack([grey, alpha]), mode="LA"), "PNG")
    return Sample("png_la", data, WIDTH, HEIGHT, "PNG", grey_of(rgb))


@functools.cache
def webp() -> Sample:
    rgb = photo_like(seed=10)
    data = _encode(Image.fromarray(rgb), "WEBP", quality=90)
    return Sample("webp", data, WIDTH, HEIGHT, "WEBP", rgb)


FIRST_FRAME_RGB = (220, 30, 30)
LATER_FRAME_RGBS = ((30, 30, 220), (30, 200, 30))


@functools.cache
def gif_animated() -> Sample:
    """Three frames: the first solid red, then solid blue, then solid green."""
    first = Image.new("RGB", (WIDTH, HEIGHT), FIRST_FRAME_RGB)
    later = [Image.new("RGB", (WIDTH, HEIGHT), colour) for colour in LATER_FRAME_RGBS]
    data = _encode(first, "GIF", save_all=True, append_images=later, duration=100, loop=0)
    expected = np.asarray(first).copy()
    return Sample("gif_animated", data, WIDTH, HEIGHT, "GIF", expected)


@functools.cache
def bmp() -> Sample:
    rgb = photo_like(seed=11)
    return Sample("bmp", _encode(Image.fromarray(rgb), "BMP"), WIDTH, HEIGHT, "BMP", rgb)


@functools.cache
def tiff() -> Sample:
    rgb = photo_like(seed=12)
    data = _encode(Image.fromarray(rgb), "TIFF", compression="tiff_deflate")
    return Sample("tiff", data, WIDTH, HEIGHT, "TIFF", rgb)


SUPPORTED: dict[str, Callable[[], Sample]] = {
    "jpeg_baseline": jpeg_baseline,
    "jpeg_progressive": jpeg_progressive,
    "jpeg_grayscale": jpeg_grayscale,
    "jpeg_cmyk": jpeg_cmyk,
    "jpeg_large": jpeg_large,
    "png_rgb": png_rgb,
    "png_grey16": png_grey16,
    "png_palette": png_palette,
    "png_rgba": png_rgba,
    "png_la": png_la,
    "webp": webp,
    "gif_animated": gif_animated,
    "bmp": bmp,
    "tiff": tiff,
}


# --------------------------------------------------------------------------------------------
# hostile inputs


def empty() -> bytes:
    return b""


def garbage(size: int = 4096, *, seed: int = 1234) -> bytes:
    """Random bytes that start with no known signature and do not look like text markup."""
    data = bytearray(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    data[0] = 0x01  # not '<', '{', '[', whitespace, or the first byte of any image signature
    return bytes(data)


def html_page() -> bytes:
    return (
        b"<!DOCTYPE html>\n<html lang='en'>\n<head><meta charset='utf-8'><title>Not found</title>"
        b"</head>\n<body><h1>404</h1><p>The image you asked for is gone.</p>"
        b"<img src='/logo.png' alt='logo'></body>\n</html>\n"
    )


def svg_document() -> bytes:
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480" viewBox="0 0 640 480">'
        b'<rect width="640" height="480" fill="#f4c2a1"/>'
        b'<circle cx="320" cy="240" r="120" fill="#a05030"/></svg>\n'
    )


def truncated_jpeg() -> bytes:
    """The first half of a valid baseline JPEG: the header parses, the scan data stops short."""
    data = jpeg_baseline().data
    return data[: len(data) // 2]


def truncated_png() -> bytes:
    """The first half of a valid PNG: IHDR is intact, the IDAT stream stops short."""
    data = png_rgb().data
    return data[: len(data) // 2]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bomb(width: int = 40_000, height: int = 40_000, *, rows: int = 4) -> bytes:
    """A well-formed PNG whose IHDR claims ``width``x``height`` RGB; only a few rows follow.

    The file is a few kilobytes; decoding it fully would need ``width * height * 3`` bytes.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    scanline = b"\x00" + b"\x00" * (width * 3)  # filter type 0 + black pixels
    idat = zlib.compress(scanline * rows, 9)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_corrupt_data(width: int = 64, height: int = 64) -> bytes:
    """A PNG whose chunks are well formed (lengths and CRCs right) but whose IDAT is not a zlib
    stream: the header parses, the pixel decoder fails part-way with an error of its own."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    not_zlib = bytes(range(7, 7 + 200))  # 0x07 is no valid zlib header byte
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", not_zlib)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_huge_sof(width: int = 65_000, height: int = 65_000) -> bytes:
    """A valid small baseline JPEG with its SOF0 frame header rewritten to claim a huge size."""
    data = bytearray(jpeg_baseline().data)
    sof = data.find(b"\xff\xc0")
    assert sof > 0, "baseline JPEG without SOF0"
    # FFC0, length (2), precision (1), height (2), width (2)
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def oversized(limit: int) -> bytes:
    """A valid JPEG, zero-padded after its end-of-image marker to ``limit + 1`` bytes."""
    data = jpeg_baseline().data
    return data + bytes(max(limit + 1 - len(data), 0))
