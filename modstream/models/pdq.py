"""PDQ perceptual hashes (Meta's 256-bit image hash) of pixels the scorer has already decoded.

The hashing itself is the C++ reference, through the ``pdqhash`` bindings; this module decides
what pixels it sees. PDQ reduces any image to 64x64 luminance with box filters whose window is
half the reduction factor, so its result depends on the size it is given: a 256x256 squash of a
photo lands up to 36 bits away from the reference hash of the full image, while the image at its
own aspect ratio, box-reduced by an integer factor to a short side of 256-511 pixels, stays within
6 bits on the reference's own test photos (``docs/benchmarks.md``, "PDQ from decoded pixels").
:func:`hash_source` makes that reduction; fast mode's DCT-downscaled JPEG decode is already in
that range, so the hash costs no second decode in either mode.

Hex follows the reference's ``toHexString`` (and ThreatExchange's): bit 0 of the hash vector is
the most significant bit of the first of 32 bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pdqhash
from PIL import Image

__all__ = [
    "HASH_BYTES",
    "VARIANTS",
    "PdqHash",
    "PdqHashing",
    "distance",
    "hash_pixels",
    "hash_source",
    "parse_hex",
]

HASH_BYTES = 32
# Short sides from here up are box-reduced by an integer factor before hashing (see above).
SOURCE_SIDE = 256
# The order of pdqhash.compute_dihedral's hashes, after the original.
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


def hash_source(image: Image.Image) -> npt.NDArray[np.uint8]:
    """The RGB pixels to hash: ``image`` box-reduced by an integer factor to a short side of
    :data:`SOURCE_SIDE` or more (unchanged when it is already smaller than twice that)."""
    factor = min(image.size) // SOURCE_SIDE
    if factor > 1:
        image = image.reduce(factor)
    return np.asarray(image.convert("RGB") if image.mode != "RGB" else image, dtype=np.uint8)


def hash_pixels(rgb: npt.NDArray[np.uint8], *, dihedral: bool = False) -> PdqHash:
    """PDQ of an (h, w, 3) uint8 RGB array, with its dihedral variants if asked for."""
    pixels = np.ascontiguousarray(rgb)
    if dihedral:
        vectors, quality = pdqhash.compute_dihedral(pixels)
        packed = [_packed(vector) for vector in vectors]
        return PdqHash(bits=packed[0], quality=int(quality), variants=tuple(packed[1:]))
    vector, quality = pdqhash.compute(pixels)
    return PdqHash(bits=_packed(vector), quality=int(quality))


def _packed(vector: npt.NDArray[np.integer]) -> bytes:
    return np.packbits(np.asarray(vector, dtype=np.uint8)).tobytes()
