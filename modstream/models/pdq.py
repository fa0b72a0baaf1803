"""PDQ perceptual hashes (Meta's 256-bit image hash), computed as the reference computes them.

PDQ turns an image's luminance into 64x64 by two passes of box filters along each axis (a tent,
window ``(size + 127) // 128``) sampled at the centres of a 64x64 grid, takes the 16x16 low
frequencies of its DCT, and sets each bit whose coefficient is above their median. The result
depends on every pixel: hashing a reduced decode lands 8-26 bits from the reference on ordinary
images, and a bank match is at most 31 bits. So modstream hashes the full decode, always, and
computes the same function faster than the reference's code: the two box passes and the
sampling are one linear map per axis (64 rows of weights, each non-zero over about two
windows), applied to the float luminance as 64 banded products per axis instead of four
passes over every pixel. The ThreatExchange C++ reference (``pdqhash``) is the tests' oracle:
on the varied corpus of ``tests/hashcorpus.py`` the two agree bit for bit (a near-tie of
coefficients at the median may differ in float rounding: two bits).

Hex follows the reference's ``toHexString`` (and ThreatExchange's): bit 255 of the hash (the
coefficient at row 15, column 15) is the most significant bit of the first of 32 bytes.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = [
    "HASH_BYTES",
    "VARIANTS",
    "PdqHash",
    "PdqHashing",
    "distance",
    "hash_luma",
    "hash_picture",
    "parse_hex",
]

HASH_BYTES = 32
MIN_SIDE = 5  # the reference's smallest hashable side: smaller images hash to zeros, quality 0
# The order of the rotated and mirrored hashes after the original (the reference's, and
# pdqhash.compute_dihedral's).
VARIANTS = ("rotate90", "rotate180", "rotate270", "flip_x", "flip_y", "flip_plus1", "flip_minus1")


class PdqHashing(enum.StrEnum):
    """What the decode computes: nothing, the hash, or the hash and its 7 rotations/mirrors."""

    OFF = "off"
    PLAIN = "plain"
    DIHEDRAL = "dihedral"


@dataclass(frozen=True, slots=True)
class PdqHash:
    """A PDQ hash (32 bytes), its quality 0-100, and, when asked for, its dihedral variants:
    the hashes of the image rotated and mirrored (:data:`VARIANTS` order)."""

    bits: bytes
    quality: int
    variants: tuple[bytes, ...] = ()

    @property
    def hex(self) -> str:
        return self.bits.hex()

    def all_bits(self) -> tuple[bytes, ...]:
        """The hash first, then its variants (none unless computed)."""
        return (self.bits, *self.variants)


def parse_hex(text: str) -> bytes:
    """64 hexadecimal characters (either case) to 32 bytes; ``ValueError`` says what is wrong."""
    if len(text) != 2 * HASH_BYTES:
        raise ValueError(f"a PDQ hash is 64 hexadecimal characters, not {len(text)}")
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ValueError("a PDQ hash is 64 hexadecimal characters (0-9, a-f)") from None


def distance(a: bytes, b: bytes) -> int:
    """Hamming distance between two 32-byte hashes."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


def hash_picture(picture: Image.Image, *, dihedral: bool = False) -> PdqHash:
    """PDQ of a decoded picture at its full size (any mode PIL converts to luminance)."""
    if picture.mode not in ("RGB", "L"):
        picture = picture.convert("RGB")
    # PIL's float luminance is the reference's: 0.299 R + 0.587 G + 0.114 B in float32.
    return hash_luma(np.asarray(picture.convert("F"), dtype=np.float32), dihedral=dihedral)


def hash_luma(luma: npt.NDArray[np.float32], *, dihedral: bool = False) -> PdqHash:
    """PDQ of an (h, w) float32 luminance array, with its dihedral variants if asked for."""
    height, width = luma.shape
    if min(height, width) < MIN_SIDE:
        zeros = bytes(HASH_BYTES)
        variants = (zeros,) * len(VARIANTS) if dihedral else ()
        return PdqHash(bits=zeros, quality=0, variants=variants)
    grid = _along(_reduce_rows(luma), width)  # 64 x 64
    coefficients = _DCT @ grid @ _DCT.T  # 16 x 16
    variants = tuple(_bits(c) for c in _dihedral(coefficients)) if dihedral else ()
    return PdqHash(bits=_bits(coefficients), quality=_quality(grid), variants=variants)


# -- the reference's steps, as linear maps ------------------------------------------------------

_GRID = 64
_DCT = np.array(
    [[np.sqrt(2 / _GRID) * np.cos(np.pi / 2 / _GRID * (i + 1) * (2 * j + 1)) for j in range(_GRID)]
     for i in range(16)],
    dtype=np.float64,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Axis:
    """The tent-and-sample map of one axis: row r has weights[r] over [starts[r], stops[r])."""

    weights: tuple[npt.NDArray[np.float32], ...]
    starts: tuple[int, ...]
    stops: tuple[int, ...]


@functools.lru_cache(maxsize=256)
def _axis(size: int) -> _Axis:
    """Two passes of the reference's box filter along an axis of ``size`` pixels (a window of
    ``(size + 127) // 128``, averaging over the pixels inside the image at the edges), sampled
    at ``int((r + 0.5) * size / 64)``: the 64 rows of the composed map."""
    window = (size + 2 * _GRID - 1) // (2 * _GRID)
    half = (window + 2) // 2
    index = np.arange(size)
    low = np.maximum(0, index - (window - half))
    high = np.minimum(size - 1, index + half - 1)  # inclusive
    count = (high - low + 1).astype(np.float64)
    samples = ((np.arange(_GRID) + 0.5) * size / _GRID).astype(np.int64)
    # The first pass's row for a sample is 1/count over its window; the second spreads each of
    # those pixels' shares over that pixel's own window. All 64 rows at once, padded: (row,
    # band pixel, first-pass pixel).
    offsets = np.arange(window)
    inner = low[samples][:, None] + offsets[None, :]  # (64, window)
    valid = inner <= high[samples][:, None]
    inner = np.minimum(inner, size - 1)
    share = np.where(valid, 1.0 / (count[samples][:, None] * count[inner]), 0.0)
    starts = low[low[samples]]
    stops = high[high[samples]] + 1
    band = starts[:, None] + np.arange(int((stops - starts).max()))[None, :]  # (64, B)
    covered = (low[inner][:, None, :] <= band[:, :, None]) & (
        band[:, :, None] <= high[inner][:, None, :]
    )
    dense = (covered * share[:, None, :]).sum(axis=2)
    weights = tuple(dense[r, : stops[r] - starts[r]].astype(np.float32) for r in range(_GRID))
    return _Axis(weights, tuple(int(v) for v in starts), tuple(int(v) for v in stops))


def _reduce_rows(luma: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The vertical map: 64 x width."""
    axis = _axis(luma.shape[0])
    out = np.empty((_GRID, luma.shape[1]), dtype=np.float64)
    for row, (weights, start, stop) in enumerate(zip(axis.weights, axis.starts, axis.stops,
                                                     strict=True)):  # fmt: skip
        out[row] = weights @ luma[start:stop]
    return out


def _along(rows: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float64]:
    """The horizontal map of the 64 reduced rows: 64 x 64."""
    axis = _axis(width)
    out = np.empty((_GRID, _GRID), dtype=np.float64)
    for column, (weights, start, stop) in enumerate(zip(axis.weights, axis.starts, axis.stops,
                                                        strict=True)):  # fmt: skip
        out[:, column] = rows[:, start:stop] @ weights
    return out


def _quality(grid: npt.NDArray[np.float64]) -> int:
    """The reference's gradient measure: the sum of each neighbour difference in percent of
    full scale, truncated, over 90, at most 100."""
    vertical = np.trunc((grid[:-1, :] - grid[1:, :]) * 100 / 255)
    horizontal = np.trunc((grid[:, :-1] - grid[:, 1:]) * 100 / 255)
    return min(100, int(np.abs(vertical).sum() + np.abs(horizontal).sum()) // 90)


def _bits(coefficients: npt.NDArray[np.float64]) -> bytes:
    """A bit per coefficient above the median (the 128th smallest); coefficient k = 16 i + j is
    bit k, and bit 255 leads the hex."""
    flat = coefficients.ravel()
    median = np.partition(flat, 127)[127]
    return np.packbits((flat > median)[::-1]).tobytes()


_I, _J = np.indices((16, 16))
_ODD_ROW = np.where(_I & 1, 1.0, -1.0)
_ODD_COLUMN = np.where(_J & 1, 1.0, -1.0)
_CHECKER = np.where((_I + _J) & 1, -1.0, 1.0)


def _dihedral(c: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], ...]:
    """The coefficients of the image rotated and mirrored (:data:`VARIANTS` order): a DCT
    basis function is even or odd about the centre, so each is a sign pattern and a transpose."""
    return (
        (c * _ODD_COLUMN).T,  # rotate90
        c * _CHECKER,  # rotate180
        (c * _ODD_ROW).T,  # rotate270
        c * _ODD_ROW,  # flip_x
        c * _ODD_COLUMN,  # flip_y
        c.T,  # flip_plus1
        (c * _CHECKER).T,  # flip_minus1
    )
