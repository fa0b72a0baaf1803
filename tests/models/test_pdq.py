"""PDQ hashes against the C++ reference (``pdqhash``, the oracle), on every kind of image.

The known answer is the hash ThreatExchange publishes for its sample photograph. Parity: every
hash modstream computes (its own implementation of the reference's function, from the full
decode, in either decode mode) lies within 2 bits of the reference's on the same file's full
pixels, for a varied corpus (``hashcorpus``); the field's compatibility bar (10 bits at quality
>= 80) is only a floor. Recall at the match distance (31) on resized, re-encoded, cropped and
brightened copies equals the reference's.
"""

from __future__ import annotations

import io
import json

import hashcorpus
import locations
import numpy as np
import pdqhash
import pytest
from PIL import Image, ImageEnhance

from modstream.models.decode import DecodeLimits
from modstream.models.pdq import (
    HASH_BYTES,
    VARIANTS,
    PdqHash,
    PdqHashing,
    distance,
    hash_luma,
    hash_picture,
    parse_hex,
)
from modstream.models.preprocess import Preprocessing, hash_image, prepare

BRIDGE = locations.PDQ / "bridge.jpg"
PUBLISHED = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
LIMITS = DecodeLimits()
PARITY = 2  # bits: a near-tie at the median may round either way
MATCH = 31


def _jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _reference(data: bytes, *, dihedral: bool = False) -> PdqHash:
    """The C++ reference on every pixel of the file's full decode (PIL, RGB)."""
    with Image.open(io.BytesIO(data)) as image:
        pixels = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    if dihedral:
        vectors, quality = pdqhash.compute_dihedral(pixels)
        packed = [np.packbits(np.asarray(v, np.uint8)).tobytes() for v in vectors]
        return PdqHash(bits=packed[0], quality=int(quality), variants=tuple(packed[1:]))
    vector, quality = pdqhash.compute(pixels)
    return PdqHash(bits=np.packbits(np.asarray(vector, np.uint8)).tobytes(), quality=int(quality))


def _bridge_variants() -> dict[str, bytes]:
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


CORPUS = {picture.name: picture for picture in hashcorpus.corpus()}


def test_the_hash_of_the_sample_photograph_is_the_published_one() -> None:
    """The sample photograph hashes to the hex ThreatExchange publishes: the function, the bit
    order and the hex layout are the reference's."""
    hashed = hash_image(BRIDGE.read_bytes(), LIMITS)
    assert hashed.pdq.hex == PUBLISHED
    assert hashed.pdq.quality == 100
    assert (hashed.width, hashed.height, hashed.format) == (1600, 1004, "JPEG")


def test_the_corpus_has_every_kind_and_size() -> None:
    """The parity corpus is as varied as its docstring says (so a kind cannot drop out
    unnoticed): at least 50 images, every kind, 32 px to 24 MP, qualities low and high."""
    kinds = {picture.kind for picture in CORPUS.values()}
    assert kinds == {"photo", "texture", "gradient", "grey", "cmyk", "palette", "screenshot",
                     "alpha", "tiny", "huge"}  # fmt: skip
    sizes = [hash_image(p.data, LIMITS) for p in CORPUS.values()]
    pixels = [s.width * s.height for s in sizes]
    assert len(CORPUS) >= 50 and min(pixels) <= 32 * 32 and max(pixels) >= 24_000_000
    qualities = [s.pdq.quality for s in sizes]
    assert min(qualities) < 50 and sum(q >= 80 for q in qualities) >= 40


@pytest.mark.parametrize("name", list(CORPUS))
def test_every_published_hash_is_within_two_bits_of_the_reference(name: str) -> None:
    """``modstream hash``, and the hash the scorer's decode carries in both modes, lie within
    2 bits of the C++ reference on the full decode, with the same quality (a low-quality hash
    included: its bits still go to banks' readers)."""
    data = CORPUS[name].data
    reference = _reference(data)
    hashes = {"hash": hash_image(data, LIMITS).pdq}
    for mode in Preprocessing:
        prepared = prepare(data, mode, LIMITS, PdqHashing.PLAIN).pdq
        assert prepared is not None
        hashes[mode.value] = prepared
    for source, pdq in hashes.items():
        assert distance(pdq.bits, reference.bits) <= PARITY, (source, pdq.hex, reference.hex)
        assert abs(pdq.quality - reference.quality) <= 1, (source, pdq.quality, reference.quality)


@pytest.mark.parametrize("name", ["photo-1600x1200-q95", "texture-1920x1080-q80",
                                  "screenshot-750x1334.png", "grey-1600x1200"])  # fmt: skip
def test_rotated_and_mirrored_hashes_are_the_references(name: str) -> None:
    """The 7 dihedral variants, in the reference's order, within 2 bits of its own."""
    data = CORPUS[name].data
    reference = _reference(data, dihedral=True)
    ours = hash_image(data, LIMITS, dihedral=True).pdq
    assert len(ours.variants) == len(VARIANTS) == 7
    assert distance(ours.bits, reference.bits) <= PARITY
    for label, mine, theirs in zip(VARIANTS, ours.variants, reference.variants, strict=True):
        assert distance(mine, theirs) <= PARITY, label


def test_recall_at_the_match_distance_equals_the_references() -> None:
    """Resized, re-encoded, cropped, brightened and PNG copies of the corpus's photos and
    screenshots: a copy matches its original (distance <= 31) by our hashes exactly when it
    does by the reference's, and the distances differ by at most 2 bits on either side."""
    originals = [p for p in CORPUS.values() if p.kind in ("photo", "screenshot", "grey")][:12]
    ours_matched = theirs_matched = 0
    for picture in originals:
        ours_original = hash_image(picture.data, LIMITS).pdq.bits
        theirs_original = _reference(picture.data).bits
        for label, copy in hashcorpus.variants(picture.data):
            ours = distance(hash_image(copy, LIMITS).pdq.bits, ours_original)
            theirs = distance(_reference(copy).bits, theirs_original)
            assert abs(ours - theirs) <= 2 * PARITY, (picture.name, label, ours, theirs)
            ours_matched += ours <= MATCH
            theirs_matched += theirs <= MATCH
    assert ours_matched == theirs_matched
    assert theirs_matched >= 0.8 * 5 * len(originals)  # the copies are ones PDQ should match


def test_copies_of_the_photograph_stay_close_and_other_images_far() -> None:
    """Resized and re-encoded copies hash near the original; the ladder's synthetic images,
    unrelated to it, land far beyond the match distance."""
    original = parse_hex(PUBLISHED)
    for name, data in _bridge_variants().items():
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
    is within 2 bits of the hash of the photograph rotated by 90 degrees (counter-clockwise)."""
    photo = Image.open(BRIDGE).convert("RGB")
    rotated = photo.transpose(Image.Transpose.ROTATE_90)
    both = hash_picture(photo, dihedral=True)
    assert both.bits == hash_picture(photo).bits
    plain = hash_picture(rotated)
    assert distance(plain.bits, both.bits) > 64
    assert distance(plain.bits, both.variants[VARIANTS.index("rotate90")]) <= PARITY


def test_images_below_the_smallest_side_hash_to_zeros_as_the_reference_does() -> None:
    """A side under 5 pixels: the reference's all-zero hash, quality 0; 5 pixels hash."""
    for size in [(4, 100), (100, 4)]:
        image = Image.fromarray(np.full((size[1], size[0], 3), 128, np.uint8))
        reference = _reference(_png(image))
        assert hash_picture(image) == PdqHash(bits=bytes(HASH_BYTES), quality=0)
        assert reference.bits == bytes(HASH_BYTES) and reference.quality == 0
    noise = np.random.default_rng(5).integers(0, 256, size=(5, 7), dtype=np.uint8)
    ours = hash_luma(noise.astype(np.float32))
    assert distance(ours.bits, _reference(_png(Image.fromarray(noise))).bits) <= PARITY


@pytest.mark.parametrize(
    ("text", "problem"),
    [("ab" * 31, "not 62"), ("zz" * 32, "0-9, a-f"), ("", "not 0")],
)
def test_parse_hex_says_what_is_wrong(text: str, problem: str) -> None:
    """A malformed hash is refused with its length or its bad characters named."""
    with pytest.raises(ValueError, match=problem):
        parse_hex(text)
    assert len(parse_hex(PUBLISHED.upper())) == HASH_BYTES
