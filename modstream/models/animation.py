"""Animated images (GIF, WebP, APNG): which frames to score, and decoding them within limits.

A safe first frame in front of explicit ones is the oldest trick against a classifier that looks
at the first frame only, so every frame of a short animation is scored, and a long one is sampled:
evenly spaced frames (the first and the last among them) plus the frames where the picture
changes most (scene changes, found on 16x16 greyscale thumbnails of every frame), up to
``max_scored_frames``. The item's score is the worst frame's.

Limits, checked before the work they bound: more frames than ``max_animation_frames``, or more
decoded pixels in all (frames x width x height) than ``max_animation_pixels``, is
``too_many_frames`` from the header alone; decoding that outlasts ``max_decode_s`` is
``decode_timeout``. An animation damaged part-way is scored on the frames before the damage.
Frames are decoded one after another (GIF and APNG frames build on the one
before), and only the sampled ones are kept, as their model crops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from modstream.errors import DecodeTimeout, TooManyFrames, TruncatedImage

__all__ = ["AnimationLimits", "Frame", "frame_count", "pick_frames", "sample_indices"]

THUMB = 16


@dataclass(frozen=True, kw_only=True, slots=True)
class AnimationLimits:
    max_animation_frames: int = 2000
    max_animation_pixels: int = 400_000_000
    max_scored_frames: int = 32
    max_decode_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Frame:
    """A sampled frame: what the caller made of it (the model crop), its index and time."""

    pixels: npt.NDArray[np.uint8]
    index: int
    offset_s: float


def frame_count(image: Image.Image) -> int:
    return int(getattr(image, "n_frames", 1) or 1)


def sample_indices(total: int, count: int) -> list[int]:
    """``count`` evenly spaced indices of ``total`` frames, the first and the last included."""
    if total <= count:
        return list(range(total))
    if count == 1:
        return [0]
    step = (total - 1) / (count - 1)
    return sorted({round(n * step) for n in range(count)})


def pick_frames(total: int, changes: list[float], cap: int) -> list[int]:
    """Which of ``total`` frames to score: all if they fit, else half the cap evenly spaced and
    the rest where ``changes[i]`` (how far frame i is from frame i-1) is largest."""
    if total <= cap:
        return list(range(total))
    even = sample_indices(total, max(cap // 2, 2))
    ranked = sorted(range(1, total), key=lambda i: changes[i], reverse=True)
    chosen = set(even)
    for index in ranked:
        if len(chosen) >= cap:
            break
        chosen.add(index)
    return sorted(chosen)


def check_limits(image: Image.Image, limits: AnimationLimits) -> int:
    """The frame count, once it and the decoded pixels it means are within the limits."""
    total = frame_count(image)
    width, height = image.size
    if total > limits.max_animation_frames:
        raise TooManyFrames(
            f"the animation has {total} frames, more than the {limits.max_animation_frames}-frame "
            "limit"
        )
    if total * width * height > limits.max_animation_pixels:
        raise TooManyFrames(
            f"the animation's {total} frames of {width}x{height} are "
            f"{total * width * height} pixels to decode, more than the "
            f"{limits.max_animation_pixels}-pixel limit"
        )
    return total


def decode_frames(
    image: Image.Image,
    limits: AnimationLimits,
    crop: Callable[[Image.Image], npt.NDArray[np.uint8]],
) -> tuple[list[Frame], int]:
    """Decode every frame once (to find scene changes and times), then the picked ones again
    into ``crop``: (the sampled frames, the frame count)."""
    total = check_limits(image, limits)
    deadline = time.monotonic() + limits.max_decode_s
    offsets: list[float] = []
    changes: list[float] = []
    previous: npt.NDArray[np.float32] | None = None
    elapsed_ms = 0.0
    keep_all = total <= limits.max_scored_frames
    kept: dict[int, npt.NDArray[np.uint8]] = {}
    for index in range(total):
        try:
            _seek(image, index, deadline)
            rgb = image.convert("RGB")  # loads the frame (WebP sets its duration only then)
        except (EOFError, OSError, ValueError) as exc:
            if index == 0:
                raise TruncatedImage(f"the animation's first frame cannot be read: {exc}") from exc
            total = index  # damaged from here on: score the frames before it
            break
        offsets.append(elapsed_ms / 1000)
        duration = image.info.get("duration", 0)
        elapsed_ms += float(duration) if isinstance(duration, int | float) else 0.0
        if keep_all:
            kept[index] = crop(rgb)
            changes.append(0.0)
            continue
        thumb = np.asarray(rgb.convert("L").resize((THUMB, THUMB)), dtype=np.float32)
        changes.append(0.0 if previous is None else float(np.mean(np.abs(thumb - previous))))
        previous = thumb
    picked = pick_frames(total, changes, limits.max_scored_frames)
    if not keep_all:
        for index in picked:
            _seek(image, index, deadline)
            kept[index] = crop(image.convert("RGB"))
    frames = [Frame(kept[index], index, offsets[index]) for index in picked]
    return frames, total


def _seek(image: Image.Image, index: int, deadline: float) -> None:
    if time.monotonic() > deadline:
        raise DecodeTimeout(f"decoding the animation took too long (at frame {index})")
    image.seek(index)
