"""Open untrusted image bytes safely: size limits, format allow-list, and typed errors.

This is the only place PIL sees bytes from the outside world. It parses the header, checks the
byte and pixel limits *before* any pixel buffer is allocated (a 40000x40000 PNG is refused from its
header), and maps PIL's many exception types onto :mod:`modstream.errors`.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from modstream.errors import (
    DecodeFailed,
    DecompressionBomb,
    EmptyImage,
    ImageError,
    ImageTooLarge,
    NotAnImage,
    NotFound,
    TruncatedImage,
    UnsupportedFormat,
)
from modstream.media import PILLOW_FORMATS
from modstream.models.animation import AnimationLimits

# Formats with maintained, memory-safe decoders in Pillow (the stills and animations of
# modstream.media). Everything else (EPS, which would run Ghostscript; PSD; ICO; ...) is refused
# at the header: hostile input never reaches those plugins.
ALLOWED_FORMATS: tuple[str, ...] = PILLOW_FORMATS
# Image.open(formats=...) looks each name up in the plugin registry, which PIL fills lazily.
Image.init()
# Pillow warns (on stderr, before modstream's own message) about images above MAX_IMAGE_PIXELS
# and below twice that. DecodeLimits.max_pixels never exceeds MAX_IMAGE_PIXELS, so every such
# image is refused as decompression_bomb below: the warning says nothing the error does not.
# (Where warnings are errors, as in the tests, it is raised and mapped the same way.)
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


@dataclass(frozen=True, kw_only=True, slots=True)
class VideoLimits:
    """Bounds on what one video may cost before it is refused, and how densely it is sampled."""

    max_duration_s: float = 600.0
    max_frames: int = 32
    frames_per_minute: int = 12
    max_frame_pixels: int = 3840 * 2160
    max_decode_s: float = 10.0
    scored_side: int = 512

    def __post_init__(self) -> None:
        if self.max_duration_s <= 0 or self.max_decode_s <= 0:
            raise ValueError("video durations and time budgets must be positive")
        if min(self.max_frames, self.frames_per_minute, self.max_frame_pixels) <= 0:
            raise ValueError("video frame limits must be positive")
        if self.scored_side <= 0:
            raise ValueError("scored_side must be positive")


@dataclass(frozen=True, kw_only=True, slots=True)
class DecodeLimits:
    """Bounds on what one image may cost before it is refused."""

    max_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 64_000_000
    animation: AnimationLimits = field(default_factory=AnimationLimits)
    video: VideoLimits = field(default_factory=VideoLimits)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ValueError("decode limits must be positive")
        ceiling = Image.MAX_IMAGE_PIXELS
        if ceiling is not None and self.max_pixels > ceiling:
            # Above this, Pillow's own bomb check answers first (a warning, then an error).
            raise ValueError(f"max_pixels cannot exceed Pillow's limit of {ceiling} pixels")


def read_limited(path: Path, limits: DecodeLimits) -> bytes:
    """Read an image file, refusing one larger than ``limits.max_bytes`` before reading it."""
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise ImageTooLarge(
                f"the file is {size} bytes, more than the {limits.max_bytes}-byte limit"
            )
        return path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}") from None
    except IsADirectoryError:
        raise NotFound(f"not a file: {path}") from None
    except PermissionError as exc:
        raise NotFound(f"cannot read {path}: {exc.strerror}") from None


def describe_non_image(data: bytes) -> str | None:
    """Name what ``data`` looks like when it is text rather than an image, else ``None``."""
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML document"
    if b"<svg" in head:
        return "an SVG (vector) document"
    if head.startswith(b"<?xml") or head.startswith(b"<"):
        return "an XML/markup document"
    if head.startswith((b"{", b"[")):
        return "a JSON document"
    return None


def check_size(data: bytes, limits: DecodeLimits, what: str = "image") -> None:
    """Refuse an empty body, or one above ``limits.max_bytes``, before anything parses it."""
    if not data:
        raise EmptyImage("the body is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise ImageTooLarge(
            f"the {what} is {len(data)} bytes, more than the {limits.max_bytes}-byte limit"
        )


def open_image(data: bytes, limits: DecodeLimits) -> Image.Image:
    """Parse the header of ``data`` and return an unloaded image that is within ``limits``."""
    check_size(data, limits)
    try:
        image = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise DecompressionBomb(f"refused before decoding: {exc}") from exc
    except Image.DecompressionBombWarning as exc:  # raised when warnings are errors
        raise DecompressionBomb(f"refused before decoding: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise _unidentified(data) from exc
    except (OSError, ValueError, SyntaxError, EOFError, struct.error, Warning) as exc:
        # Warning: Pillow's other warnings (corrupt EXIF, ...) when warnings are errors.
        raise DecodeFailed(f"cannot parse the image header: {exc}") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise DecodeFailed(f"the image has an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise DecompressionBomb(
            f"the image is {width}x{height} = {width * height} pixels, more than the "
            f"{limits.max_pixels}-pixel limit; refused before decoding"
        )
    return image


def load_pixels(image: Image.Image) -> None:
    """Decode the pixels of an image opened by :func:`open_image`, mapping failures to errors."""
    try:
        image.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecompressionBomb(f"refused while decoding: {exc}") from exc
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error, Warning) as exc:
        text = str(exc)
        if "truncated" in text.lower() or isinstance(exc, EOFError):
            raise TruncatedImage(f"the image data ends early: {text}") from exc
        raise DecodeFailed(f"cannot decode the image: {text}") from exc


def _unidentified(data: bytes) -> ImageError:
    looks_like = describe_non_image(data)
    if looks_like is not None and "SVG" in looks_like:
        return UnsupportedFormat(f"the body is {looks_like}; only raster images are scored")
    if looks_like is not None:
        return NotAnImage(f"the body is {looks_like}, not an image")
    formats = ", ".join(ALLOWED_FORMATS)
    return NotAnImage(f"the body is not an image in a supported format ({formats})")
