"""Animated GIF, WebP and APNG: which frames are scored, and the limits that bound the work."""

from __future__ import annotations

import io

import locations
import numpy as np
import pytest
from PIL import Image

from modstream.errors import DecodeTimeout, TooManyFrames
from modstream.models.animation import AnimationLimits, pick_frames, sample_indices
from modstream.models.decode import DecodeLimits
from modstream.models.preprocess import Preprocessing, model_crop, prepare

SAFE = Image.open(locations.LADDER / "syn_14_0.png").convert("RGB")
HOT = Image.open(locations.LADDER / "syn_11_5.png").convert("RGB")


def _animation(pictures: list[Image.Image], fmt: str, duration_ms: int = 100) -> bytes:
    buffer = io.BytesIO()
    pictures[0].save(buffer, format=fmt, save_all=True, append_images=pictures[1:],
                     duration=duration_ms, loop=0)  # fmt: skip
    return buffer.getvalue()


def _tinted(n: int) -> Image.Image:
    """Distinct frames (PIL merges identical neighbours when it saves an animation)."""
    return Image.new("RGB", (64, 48), (n % 256, (n * 7) % 256, (n * 13) % 256))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
@pytest.mark.parametrize("mode", list(Preprocessing))
def test_every_frame_of_a_short_animation_is_cropped_with_its_time(
    fmt: str, mode: Preprocessing
) -> None:
    """A 6-frame animation gives 6 crops in order, each the exact crop of its frame, with the
    frame's index and its start time from the frame durations; the still fields stay right."""
    pictures = [_tinted(n * 40) for n in range(6)]
    prepared = prepare(_animation(pictures, fmt, 120), mode, DecodeLimits())
    assert prepared.total_frames == 6 and [f.index for f in prepared.frames] == list(range(6))
    assert [f.offset_s for f in prepared.frames] == pytest.approx([0.12 * n for n in range(6)])
    assert (prepared.width, prepared.height, prepared.format) == (64, 48, fmt)
    expected = model_crop(pictures[3])
    assert np.abs(prepared.frames[3].pixels.astype(int) - expected.astype(int)).mean() < 8
    assert prepared.pixels is prepared.frames[0].pixels


def test_a_still_image_has_no_frames() -> None:
    """A one-frame GIF or a PNG is a still image, exactly as before."""
    still = prepare((locations.LADDER / "syn_11_5.png").read_bytes(), Preprocessing.EXACT,
                    DecodeLimits())  # fmt: skip
    assert still.frames == () and still.total_frames == 1
    one = prepare(_animation([SAFE], "GIF"), Preprocessing.EXACT, DecodeLimits())
    assert one.frames == ()


def test_a_long_animation_is_sampled_evenly_and_at_its_scene_change() -> None:
    """200 frames of one picture with a single different frame at 137: at most the cap are
    scored, the first and last among them, and the odd frame is one of them."""
    pictures = [_tinted(n % 2) for n in range(200)]  # alternate two near-identical tints
    pictures[137] = HOT.resize((64, 48))
    limits = DecodeLimits(animation=AnimationLimits(max_scored_frames=16))
    prepared = prepare(_animation(pictures, "GIF", 40), Preprocessing.FAST, limits)
    indices = [f.index for f in prepared.frames]
    assert prepared.total_frames == 200 and len(indices) <= 16
    assert indices[0] == 0 and indices[-1] == 199 and 137 in indices


def test_sampling_is_even_and_scene_changes_fill_the_rest() -> None:
    """The even half includes both ends; the largest changes take the remaining places."""
    assert sample_indices(5, 8) == [0, 1, 2, 3, 4]
    assert sample_indices(101, 5) == [0, 25, 50, 75, 100]
    changes = [0.0] * 100
    changes[42], changes[77] = 9.0, 5.0
    picked = pick_frames(100, changes, 6)
    assert {0, 99, 42, 77} <= set(picked) and len(picked) == 6


def test_animations_beyond_the_caps_are_refused_from_the_header() -> None:
    """Too many frames, or too many decoded pixels in all, is too_many_frames; a decode that
    outlasts its budget is decode_timeout."""
    many = _animation([_tinted(n) for n in range(60)], "GIF", 20)
    with pytest.raises(TooManyFrames, match="60 frames"):
        prepare(many, Preprocessing.FAST,
                DecodeLimits(animation=AnimationLimits(max_animation_frames=50)))  # fmt: skip
    with pytest.raises(TooManyFrames, match="pixels to decode"):
        prepare(many, Preprocessing.FAST,
                DecodeLimits(animation=AnimationLimits(max_animation_pixels=100_000)))  # fmt: skip
    with pytest.raises(DecodeTimeout):
        prepare(many, Preprocessing.FAST,
                DecodeLimits(animation=AnimationLimits(max_decode_s=0.0)))  # fmt: skip


def test_a_truncated_animation_is_scored_on_the_frames_before_the_damage() -> None:
    """An animated GIF cut off part-way gives the frames it still has."""
    data = _animation([_tinted(n * 30) for n in range(8)], "GIF")
    prepared = prepare(data[: len(data) * 2 // 3], Preprocessing.EXACT, DecodeLimits())
    assert 1 <= len(prepared.frames) < 8
