"""PDQ hashes: the reference's known answer, and hashes of decoded pixels against the reference.

The known answer is the hash ThreatExchange publishes for its sample photograph; the agreement
bar is the PDQ authors' own (an implementation is compatible when its hashes of quality >= 80 lie
within distance 10 of the C++ reference on the full image).
"""

from __future__ import annotations

import io
import json

import locations
import numpy as np
import pytest
from PIL import Image, ImageEnhance

from modstream.models.decode import DecodeLimits
from modstream.models.pdq import (
    HASH_BYTES,
    PdqHashing,
    distance,
    hash_pixels,
    hash_source,
    parse_hex,
)
from modstream.models.preprocess import Preprocessing, hash_image, prepare

BRIDGE = locations.PDQ / "bridge.jpg"
PUBLISHED = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
LIMITS = DecodeLimits()
COMPATIBLE = 10  # the PDQ authors' bar at quality >= 80


def _jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def _variants() -> dict[str, bytes]:
    photo = Image.open(BRIDGE).convert("RGB")
    width, height = photo.size
    upscaled = photo.resize((width * 2, height * 2), Image.Resampling.LANCZOS)
    return {
        "original": BRIDGE.read_bytes(),
        "half size": _jpeg(photo.resize((width // 2, height // 2))),
        "twice the size": _jpeg(upscaled, quality=90),
        "jpeg quality 40": _jpeg(photo, quality=40),
        "progressive": _jpeg(photo, quality=85, progressive=True),
        "brighter": _jpeg(ImageEnhance.Brightness(photo).enhance(1.15)),
        "png": _png(photo),
    }


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_hash_of_the_sample_photograph_is_the_published_one() -> None:
    """Every pixel of the sample, hashed by the reference through our packing, gives the hex
    ThreatExchange publishes: the bit order and the hex layout are the reference's."""
    hashed = hash_image(BRIDGE.read_bytes(), LIMITS, reference=True)
    assert hashed.pdq.hex == PUBLISHED
    assert hashed.pdq.quality == 100
    assert (hashed.width, hashed.height, hashed.format) == (1600, 1004, "JPEG")


@pytest.mark.parametrize("mode", list(Preprocessing))
@pytest.mark.parametrize("variant", list(_variants()))
def test_the_scorers_decode_hashes_within_the_compatibility_bar(
    mode: Preprocessing, variant: str
) -> None:
    """The hash the scorer computes from its own decode (either mode, no second decode) lies
    within distance 10 of the reference hash of the same file's full pixels."""
    data = _variants()[variant]
    reference = hash_image(data, LIMITS, reference=True).pdq
    prepared = prepare(data, mode, LIMITS, PdqHashing.PLAIN)
    assert prepared.pdq is not None and reference.quality >= 80
    assert distance(prepared.pdq.bits, reference.bits) <= COMPATIBLE


def test_copies_of_the_photograph_stay_close_and_other_images_far() -> None:
    """Resized and re-encoded copies hash near the original; the ladder's synthetic images,
    unrelated to it, land far beyond the match distance."""
    original = parse_hex(PUBLISHED)
    for name, data in _variants().items():
        pdq = hash_image(data, LIMITS).pdq
        assert distance(pdq.bits, original) <= 16, name
    for path in sorted(locations.LADDER.glob("*.png")):
        pdq = hash_image(path.read_bytes(), LIMITS).pdq
        assert distance(pdq.bits, original) > 64, path.name


def test_synthetic_ladder_images_have_low_quality() -> None:
    """The ladder's smooth synthetic images are the featureless kind PDQ flags with a quality
    below 50, which banks then ignore."""
    names = json.loads((locations.LADDER / "reference.json").read_text())
    qualities = [hash_image((locations.LADDER / n).read_bytes(), LIMITS).pdq.quality for n in names]
    assert max(qualities) < 50


def test_dihedral_hashes_include_the_plain_one_and_find_a_rotated_copy() -> None:
    """With rotations the first hash is the plain one, and the rotate90 variant of the original
    is within a few bits of the hash of the photograph rotated by 90 degrees."""
    photo = Image.open(BRIDGE).convert("RGB")
    rotated = np.asarray(photo.transpose(Image.Transpose.ROTATE_270))  # 90 degrees clockwise
    both = hash_pixels(np.asarray(photo), dihedral=True)
    assert both.bits == hash_pixels(np.asarray(photo)).bits
    assert len(both.variants) == 7
    plain = hash_pixels(rotated)
    assert distance(plain.bits, both.bits) > 64
    assert min(distance(plain.bits, variant) for variant in both.variants) <= COMPATIBLE


def test_hash_source_reduces_only_large_images_and_keeps_the_aspect_ratio() -> None:
    """A short side of 512 or more is box-reduced by an integer factor to 256-511 pixels."""
    assert hash_source(Image.new("RGB", (1600, 1004))).shape == (335, 534, 3)  # factor 3
    assert hash_source(Image.new("RGB", (500, 300))).shape == (300, 500, 3)
    assert hash_source(Image.new("L", (64, 64))).shape == (64, 64, 3)


@pytest.mark.parametrize(
    ("text", "problem"),
    [("ab" * 31, "not 62"), ("zz" * 32, "0-9, a-f"), ("", "not 0")],
)
def test_parse_hex_says_what_is_wrong(text: str, problem: str) -> None:
    """A malformed hash is refused with its length or its bad characters named."""
    with pytest.raises(ValueError, match=problem):
        parse_hex(text)
    assert len(parse_hex(PUBLISHED.upper())) == HASH_BYTES
