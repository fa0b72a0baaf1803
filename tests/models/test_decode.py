"""Decoding untrusted bytes: supported formats become the model crop, hostile input is refused.

Checks run against :func:`modstream.models.preprocess.prepare` in both preprocessing modes, and
through a real :class:`~modstream.pipeline.score.scorer.Scorer` to show one bad input never
stops it.
"""

from __future__ import annotations

import asyncio
import io
import tracemalloc
from collections.abc import Callable

import imagegen
import numpy as np
import pytest
from PIL import Image

from modstream.errors import (
    DecodeFailed,
    DecompressionBomb,
    EmptyImage,
    ImageError,
    ImageTooLarge,
    NotAnImage,
    TruncatedImage,
    UnsupportedFormat,
)
from modstream.models.decode import DecodeLimits
from modstream.models.preprocess import PreparedImage, Preprocessing, prepare
from modstream.pipeline.score.scorer import Scorer

MODES = list(Preprocessing)
DEFAULT_LIMITS = DecodeLimits()
MB = 1024 * 1024

# (builder, exact error class, the stable ``kind`` it must report)
HOSTILE: dict[str, tuple[Callable[[], bytes], type[ImageError], str]] = {
    "empty": (imagegen.empty, EmptyImage, "empty"),
    "garbage": (imagegen.garbage, NotAnImage, "not_an_image"),
    "html": (imagegen.html_page, NotAnImage, "not_an_image"),
    "svg": (imagegen.svg_document, UnsupportedFormat, "unsupported_format"),
    "truncated_jpeg": (imagegen.truncated_jpeg, TruncatedImage, "truncated"),
    "truncated_png": (imagegen.truncated_png, TruncatedImage, "truncated"),
    "png_bomb_40000": (imagegen.png_bomb, DecompressionBomb, "decompression_bomb"),
    "jpeg_sof_65000": (imagegen.jpeg_huge_sof, DecompressionBomb, "decompression_bomb"),
    "png_corrupt_data": (imagegen.png_corrupt_data, DecodeFailed, "decode_failed"),
}


def reference_crop(rgb: np.ndarray) -> np.ndarray:
    """What the model should see of ``rgb``: 256x256 bilinear, centre 224 crop (no JPEG trip)."""
    resized = Image.fromarray(np.ascontiguousarray(rgb)).resize(
        (256, 256), Image.Resampling.BILINEAR
    )
    return np.asarray(resized.crop((16, 16, 240, 240)), dtype=np.float64)


def assert_model_crop(prepared: PreparedImage) -> None:
    pixels = prepared.pixels
    assert pixels.shape == (224, 224, 3)
    assert pixels.dtype == np.uint8
    assert pixels.flags.c_contiguous


def assert_typed_error(error: ImageError, cls: type[ImageError], kind: str) -> None:
    assert type(error) is cls, f"expected {cls.__name__}, got {type(error).__name__}: {error}"
    assert error.kind == kind
    assert str(error).strip(), "the error message is empty"
    assert error.to_dict() == {"kind": kind, "message": str(error)}


# ------------------------------------------------------------------------------------------------
# supported formats


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(imagegen.SUPPORTED))
def test_supported_format_decodes_to_the_model_crop(name: str, mode: Preprocessing) -> None:
    """Every supported format yields a (224,224,3) uint8 crop of the drawn picture + true size."""
    sample = imagegen.SUPPORTED[name]()
    prepared = prepare(sample.data, mode, DEFAULT_LIMITS)
    assert_model_crop(prepared)
    assert (prepared.width, prepared.height) == (sample.width, sample.height)
    assert prepared.format == sample.format
    # The crop shows the picture that was encoded: right channel order, orientation, colour space.
    seen = prepared.pixels.astype(np.float64)
    expected = reference_crop(sample.expected_rgb)
    mean_abs = np.abs(seen - expected).mean()
    channel_shift = np.abs(seen.mean(axis=(0, 1)) - expected.mean(axis=(0, 1))).max()
    assert mean_abs < 4.0, f"{name}/{mode}: mean |pixel difference| {mean_abs:.2f}"
    assert channel_shift < 3.0, f"{name}/{mode}: a channel mean moved by {channel_shift:.2f}"


@pytest.mark.parametrize("mode", MODES)
def test_sixteen_bit_greyscale_is_scaled_not_clipped_white(mode: Preprocessing) -> None:
    """A 16-bit greyscale PNG is scaled to 8 bits: its crop mean tracks the source, not 255."""
    sample = imagegen.png_grey16()
    source_mean = reference_crop(sample.expected_rgb).mean()  # the source >> 8, resized and cropped
    assert 100 < source_mean < 160, "the test picture should be mid-grey on average"
    crop = prepare(sample.data, mode, DEFAULT_LIMITS).pixels.astype(np.float64)
    assert abs(crop.mean() - source_mean) < 3.0, f"crop mean {crop.mean():.1f} vs {source_mean:.1f}"
    assert (crop >= 250).mean() < 0.05, "most of the crop is white: 16-bit values were clipped"
    assert np.abs(crop[..., 0] - crop[..., 2]).max() <= 2, "greyscale must stay grey"


@pytest.mark.parametrize("mode", MODES)
def test_animated_gif_is_scored_on_its_first_frame(mode: Preprocessing) -> None:
    """A 3-frame GIF (red, blue, green) decodes to a red crop: the first frame is used."""
    data = imagegen.gif_animated().data
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.n_frames == 3, "the sample must really be animated"
    crop = prepare(data, mode, DEFAULT_LIMITS).pixels
    mean = crop.astype(np.float64).mean(axis=(0, 1))
    assert np.abs(mean - imagegen.FIRST_FRAME_RGB).max() < 8, f"crop mean colour {mean}"
    for later in imagegen.LATER_FRAME_RGBS:
        assert np.abs(mean - later).max() > 100, f"crop mean colour {mean} is a later frame"


@pytest.mark.parametrize("name", sorted(imagegen.SUPPORTED))
def test_fast_and_exact_modes_see_the_same_picture(name: str) -> None:
    """The fast preprocessing's crop differs from the exact one by a few grey levels at most."""
    data = imagegen.SUPPORTED[name]().data
    exact = prepare(data, Preprocessing.EXACT, DEFAULT_LIMITS).pixels.astype(np.int16)
    fast = prepare(data, Preprocessing.FAST, DEFAULT_LIMITS).pixels.astype(np.int16)
    assert np.abs(exact - fast).mean() < 2.0


# ------------------------------------------------------------------------------------------------
# hostile inputs


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_input_raises_its_typed_error(name: str, mode: Preprocessing) -> None:
    """Each hostile body raises its specific ImageError subclass, stable kind, and a message."""
    build, cls, kind = HOSTILE[name]
    with pytest.raises(ImageError) as raised:
        prepare(build(), mode, DEFAULT_LIMITS)
    assert_typed_error(raised.value, cls, kind)


@pytest.mark.parametrize("mode", MODES)
def test_body_over_max_bytes_is_refused_for_its_size_alone(mode: Preprocessing) -> None:
    """An image 1 byte over max_bytes is too_large; the same bytes decode with a higher cap."""
    limit = 16 * 1024
    data = imagegen.oversized(limit)
    assert len(data) == limit + 1
    with pytest.raises(ImageError) as raised:
        prepare(data, mode, DecodeLimits(max_bytes=limit))
    assert_typed_error(raised.value, ImageTooLarge, "too_large")
    assert_model_crop(prepare(data, mode, DecodeLimits(max_bytes=limit + 1)))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "build", [imagegen.png_bomb, imagegen.jpeg_huge_sof], ids=["png_40000", "jpeg_65000"]
)
def test_decompression_bomb_is_refused_without_allocating_pixels(
    build: Callable[[], bytes], mode: Preprocessing
) -> None:
    """A tiny file claiming billions of pixels is refused before any large buffer is allocated."""
    data = build()
    assert len(data) < 64 * 1024, "the bomb itself must be small"
    pil_before = Image.core.get_stats()
    tracemalloc.start()
    try:
        with pytest.raises(DecompressionBomb):
            prepare(data, mode, DEFAULT_LIMITS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    pil_after = Image.core.get_stats()
    # tracemalloc sees Python and numpy allocations; Pillow's image memory comes from its own
    # block arena, which it counts separately.
    pil_blocks = sum(
        pil_after[key] - pil_before[key] for key in ("allocated_blocks", "reused_blocks")
    )
    assert peak < 50 * MB, f"peak traced allocation {peak / MB:.1f} MB"
    assert pil_blocks * Image.core.get_block_size() < 50 * MB, f"{pil_blocks} Pillow blocks"


def test_pixel_limit_is_enforced_by_modstream_not_only_by_pillow() -> None:
    """A 9000x9000 header (81 MP: over the 64 MP default, under Pillow's own guard) is refused."""
    pixels = 9000 * 9000
    assert DEFAULT_LIMITS.max_pixels < pixels, "the case must exceed modstream's default limit"
    pillow_limit = Image.MAX_IMAGE_PIXELS
    assert pillow_limit is not None and pixels < pillow_limit, "must sit below Pillow's own limit"
    with pytest.raises(ImageError) as raised:
        prepare(imagegen.png_bomb(9000, 9000), Preprocessing.FAST, DEFAULT_LIMITS)
    assert_typed_error(raised.value, DecompressionBomb, "decompression_bomb")
    assert "9000x9000" in str(raised.value)


@pytest.mark.parametrize("mode", MODES)
def test_max_pixels_boundary_is_inclusive(mode: Preprocessing) -> None:
    """An image of exactly max_pixels pixels decodes; with max_pixels one lower it is refused."""
    sample = imagegen.png_rgb()
    pixels = sample.width * sample.height
    assert_model_crop(prepare(sample.data, mode, DecodeLimits(max_pixels=pixels)))
    with pytest.raises(DecompressionBomb):
        prepare(sample.data, mode, DecodeLimits(max_pixels=pixels - 1))


# ------------------------------------------------------------------------------------------------
# through a running scorer


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("name", [*sorted(HOSTILE), "too_large"])
async def test_scorer_raises_typed_error_and_keeps_scoring(name: str, fast_scorer: Scorer) -> None:
    """Scorer.score on a hostile body raises its typed error; the next good image still scores."""
    if name == "too_large":
        body = imagegen.oversized(fast_scorer.config.limits.max_bytes)
        cls, kind = ImageTooLarge, "too_large"
    else:
        build, cls, kind = HOSTILE[name]
        body = build()
    with pytest.raises(ImageError) as raised:
        await fast_scorer.score(body)
    assert_typed_error(raised.value, cls, kind)

    good = imagegen.jpeg_baseline()
    result = await fast_scorer.score(good.data)
    assert 0.0 <= result.nsfw <= 1.0
    assert (result.width, result.height, result.format) == (good.width, good.height, "JPEG")


@pytest.mark.asyncio(loop_scope="session")
async def test_scorer_scores_every_supported_format(fast_scorer: Scorer) -> None:
    """Every supported format scores through the scorer with its true size and format."""
    samples = [build() for build in imagegen.SUPPORTED.values()]
    results = await asyncio.gather(*(fast_scorer.score(sample.data) for sample in samples))
    for sample, result in zip(samples, results, strict=True):
        assert 0.0 <= result.nsfw <= 1.0, sample.name
        assert (result.width, result.height, result.format) == (
            sample.width,
            sample.height,
            sample.format,
        ), sample.name
        assert result.model.startswith("open_nsfw@864bb37b")


@pytest.mark.asyncio(loop_scope="session")
async def test_bad_inputs_mixed_into_a_burst_do_not_disturb_good_ones(fast_scorer: Scorer) -> None:
    """Concurrent good and bad inputs: each bad one fails alone, each good one keeps its score."""
    good = [imagegen.SUPPORTED[name]().data for name in ("jpeg_baseline", "png_rgb", "webp")]
    alone = [(await fast_scorer.score(data)).nsfw for data in good]
    bad = [build() for build, _, _ in HOSTILE.values()]
    mixed: list[bytes] = [item for pair in zip(bad, good * 3, strict=False) for item in pair]
    outcomes = await asyncio.gather(
        *(fast_scorer.score(data) for data in mixed), return_exceptions=True
    )
    for data, outcome in zip(mixed, outcomes, strict=True):
        if data in good:
            assert not isinstance(outcome, BaseException), outcome
            assert outcome.nsfw == pytest.approx(alone[good.index(data)], abs=1e-4)
        else:
            assert isinstance(outcome, ImageError), outcome
