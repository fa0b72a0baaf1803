"""Cutting progressive JPEGs down to their coarse scans (fast mode's screen)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from modstream.models.jpeg_scans import coarse_progressive


def _photo(progressive: bool, size: tuple[int, int] = (1200, 900)) -> bytes:
    rng = np.random.default_rng(3)
    small = rng.integers(0, 255, (size[1] // 20, size[0] // 20, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    noisy = np.asarray(image, dtype=np.int16) + rng.integers(-12, 12, (size[1], size[0], 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=90, progressive=progressive
    )
    return buffer.getvalue()


def _draft_decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        image.draft("RGB", (256, 256))
        return np.asarray(image.convert("RGB"), dtype=np.float64)


def test_progressive_file_keeps_its_size_and_picture_at_draft_scale() -> None:
    """The coarse file is much smaller and decodes to nearly the same downscaled picture."""
    data = _photo(progressive=True)
    coarse = coarse_progressive(data)
    assert coarse is not None
    assert len(coarse) < len(data) * 0.6
    with Image.open(io.BytesIO(coarse)) as image:
        assert image.size == (1200, 900)
    difference = np.abs(_draft_decode(coarse) - _draft_decode(data))
    assert difference.shape[0] >= 225 and difference.mean() < 3.0


def test_baseline_jpeg_is_left_alone() -> None:
    """A baseline JPEG has nothing to drop."""
    assert coarse_progressive(_photo(progressive=False)) is None


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8",
        b"\xff\xd8\xff",
        b"\xff\xd8\xff\xc2\x00",
        b"\xff\xd8\xff\xda\x00\x08\x01\x01\x00\x06\x3f\x00",  # SOS header cut short
        b"\x89PNG\r\n\x1a\n",
        b"\xff\xd8" + b"\xff\xfe\x00\x02" * 5000,  # more segments than it will walk
    ],
)
def test_anything_unparseable_is_none(data: bytes) -> None:
    """Hostile or odd bytes never raise: the caller decodes the file as it is."""
    assert coarse_progressive(data) is None


def test_truncated_progressive_file_does_not_raise() -> None:
    """Every prefix of a progressive file is either refused or cut without an exception."""
    data = _photo(progressive=True, size=(320, 240))
    for end in range(0, len(data), max(len(data) // 97, 1)):
        result = coarse_progressive(data[:end])
        assert result is None or result.startswith(b"\xff\xd8")
