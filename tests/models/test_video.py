"""Video decoding from memory: sniffing, sampling, limits and typed errors.

Every clip is written at test time with PyAV (H.264 in MP4 and MOV, VP9 in WebM, FFV1 in
Matroska and MJPEG in MP4 for the codec allow-list) in solid colours, so a frame's colour says
which frame it is.
"""

from __future__ import annotations

import io
import itertools
import random
import struct
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from modstream.errors import ImageError
from modstream.models.decode import VideoLimits
from modstream.models.video import (
    DecodedVideo,
    decode_video,
    sample_times,
    sniff_video,
)

FPS = 10
BLUE = (20, 40, 220)
RED = (230, 20, 20)

Colour = Callable[[int], tuple[int, int, int]]


def _ramp(i: int) -> tuple[int, int, int]:
    return (i * 8 % 256, 60, 200)


def write_clip(
    target: io.BytesIO | Path,
    *,
    container: str = "mp4",
    codec: str = "libx264",
    frames: int = 30,
    size: tuple[int, int] = (96, 64),
    colour: Colour = _ramp,
    options: dict[str, str] | None = None,
) -> bytes:
    """Encode ``frames`` solid-colour frames at ``FPS`` and return the file's bytes."""
    pix_fmt = {"ffv1": "yuv420p", "mjpeg": "yuvj420p"}.get(codec, "yuv420p")
    codec_options = {
        "libx264": {"preset": "ultrafast", "g": "10"},
        "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "g": "10"},
    }.get(codec, {})
    width, height = size
    with av.open(target, "w", format=container, options=options or {}) as out:
        stream = out.add_stream(codec, rate=FPS, options=codec_options)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            pixels = np.full((height, width, 3), colour(i), np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    if isinstance(target, Path):
        return target.read_bytes()
    return target.getvalue()


@pytest.fixture(scope="module")
def mp4() -> bytes:
    return write_clip(io.BytesIO())


@pytest.fixture(scope="module")
def webm() -> bytes:
    return write_clip(io.BytesIO(), container="webm", codec="libvpx-vp9")


def _timed(call: Callable[[], object]) -> tuple[BaseException | None, float]:
    started = time.perf_counter()
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the tests below assert on what it was
        return exc, time.perf_counter() - started
    return None, time.perf_counter() - started


def _refused(data: bytes, limits: VideoLimits | None = None) -> ImageError:
    """Decode ``data``, which must fail with a typed error in well under a second."""
    error, took_s = _timed(lambda: decode_video(data, limits or VideoLimits()))
    assert took_s < 1.0
    assert isinstance(error, ImageError), f"not a typed error: {error!r}"
    return error


# -- sniffing ----------------------------------------------------------------------------------


def _image_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), BLUE).save(out, format=fmt)
    return out.getvalue()


def test_sniffing_names_each_container_by_its_bytes(mp4: bytes, webm: bytes) -> None:
    """ISO BMFF is "mp4" (or "mov" for the QuickTime brand), EBML webm/matroska is "webm", and
    images, text, still-image ISO BMFF (AVIF) and nothing at all are not videos."""
    mov = write_clip(io.BytesIO(), container="mov", frames=3)
    mkv = write_clip(io.BytesIO(), container="matroska", codec="ffv1", frames=3)
    avif_header = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf"
    table = [
        (mp4, "mp4"),
        (mov, "mov"),
        (webm, "webm"),
        (mkv, "webm"),
        (_image_bytes("JPEG"), None),
        (_image_bytes("PNG"), None),
        (b"<!doctype html><html></html>", None),
        (b"plain text, long enough to hold a box header", None),
        (avif_header, None),
        (b"\x1a\x45\xdf\xa3", None),
        (b"", None),
    ]
    assert [sniff_video(data) for data, _ in table] == [kind for _, kind in table]


# -- sampling times ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("duration_s", "limits", "expected"),
    [
        (3.0, VideoLimits(max_frames=4), (0.0, 0.75, 1.5, 2.25)),
        (59.0, VideoLimits(max_frames=2), (0.0, 29.5)),
        (120.0, VideoLimits(max_frames=32, frames_per_minute=2), (0.0, 30.0, 60.0, 90.0)),
        (600.0, VideoLimits(max_frames=3, frames_per_minute=12), (0.0, 200.0, 400.0)),
        (90.0, VideoLimits(frames_per_minute=1), (0.0, 45.0)),
        (0.0, VideoLimits(), (0.0,)),
    ],
)
def test_sample_times_table(
    duration_s: float, limits: VideoLimits, expected: tuple[float, ...]
) -> None:
    """Short clips get up to max_frames samples, long ones frames_per_minute per minute capped at
    max_frames; t=0 is always sampled and the times are evenly spaced within the duration."""
    times = sample_times(duration_s, limits)
    assert times == pytest.approx(expected)
    assert times[0] == 0.0
    assert all(a < b for a, b in itertools.pairwise(times))
    assert all(t < duration_s for t in times) or duration_s == 0.0


def test_long_clip_at_default_density_is_capped_by_max_frames() -> None:
    """Ten minutes at 12 frames a minute would be 120 frames: max_frames (32) caps it."""
    times = sample_times(600.0, VideoLimits())
    assert len(times) == 32
    assert times[1] == pytest.approx(600.0 / 32)


# -- decoding ----------------------------------------------------------------------------------


def _is(colour: tuple[int, int, int], image: Image.Image) -> bool:
    pixel = image.getpixel((image.width // 2, image.height // 2))
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) < 40 for a, b in zip(pixel, colour, strict=True))


@pytest.mark.parametrize(("container", "codec"), [("mp4", "libx264"), ("webm", "libvpx-vp9")])
def test_sampling_finds_the_distinct_window(container: str, codec: str) -> None:
    """Frames shown from 1.0 s to 1.4 s are red: sampling finds one, and every sampled frame's
    offset and index agree with the colour (to within one frame)."""
    red_indices = range(10, 14)
    data = write_clip(
        io.BytesIO(),
        container=container,
        codec=codec,
        colour=lambda i: RED if i in red_indices else BLUE,
    )
    decoded = decode_video(data, VideoLimits(max_frames=32))
    assert decoded.container == container
    assert decoded.codec == {"libx264": "h264", "libvpx-vp9": "vp9"}[codec]
    assert (decoded.width, decoded.height) == (96, 64)
    assert decoded.duration_s == pytest.approx(3.0, abs=0.15)
    red = [frame for frame in decoded.frames if _is(RED, frame.image)]
    assert red, "no sampled frame in the 1.0-1.4 s window"
    for frame in red:
        assert 1.0 - 1 / FPS <= frame.offset_s < 1.4 + 1 / FPS
        assert min(red_indices) - 1 <= frame.index <= max(red_indices) + 1
    for frame in decoded.frames:
        assert abs(frame.offset_s * FPS - frame.index) <= 1
    offsets = [frame.offset_s for frame in decoded.frames]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)


def test_frames_are_bounded_in_number_and_size() -> None:
    """A decode returns at most max_frames RGB frames, each with a long side within scored_side
    and the clip's aspect ratio, whatever the clip's length and size."""
    data = write_clip(io.BytesIO(), frames=40, size=(160, 120))
    decoded = decode_video(data, VideoLimits(max_frames=5, scored_side=64))
    assert 1 <= len(decoded.frames) <= 5
    assert decoded.frames[0].offset_s == 0.0
    for frame in decoded.frames:
        assert frame.image.mode == "RGB"
        assert max(frame.image.size) <= 64
        assert frame.image.size == (64, 48)
    assert decoded.total_frames == 40


def test_bytes_not_the_name_choose_the_demuxer(mp4: bytes) -> None:
    """An MP4 offered as a WebM is read as what its bytes are: the sniffed kind decides."""
    decoded: DecodedVideo = decode_video(mp4, VideoLimits(max_frames=2))
    assert decoded.container == "mp4"


# -- hostile input -----------------------------------------------------------------------------


def _claim_duration(data: bytes, *, per_frame_ticks: int, header_duration: int) -> bytes:
    """Patch an MP4's sample table (every frame lasts ``per_frame_ticks``) and its movie,
    track, media and edit-list durations: what FFmpeg derives the duration from."""
    patched = bytearray(data)
    stts = patched.find(b"stts")
    for entry in range(struct.unpack_from(">I", patched, stts + 8)[0]):
        struct.pack_into(">I", patched, stts + 12 + 8 * entry + 4, per_frame_ticks)
    for box, offset in ((b"mvhd", 20), (b"mdhd", 20), (b"tkhd", 24), (b"elst", 12)):
        at = patched.find(box)
        assert at > 0 and patched[at + 4] == 0  # version 0 boxes: 32-bit fields
        struct.pack_into(">I", patched, at + offset, header_duration)
    return bytes(patched)


def test_a_huge_claimed_duration_is_too_long_before_decoding(mp4: bytes) -> None:
    """A clip whose headers claim 30 hours is refused as too_long from its header."""
    hostile = _claim_duration(mp4, per_frame_ticks=10240 * 3600, header_duration=0xFFFFFFF0)
    assert _refused(hostile).kind == "too_long"


def test_a_duration_above_the_cap_is_too_long(mp4: bytes) -> None:
    """The cap applies to an honest claim too: 3 s against a 1 s cap."""
    assert _refused(mp4, VideoLimits(max_duration_s=1.0)).kind == "too_long"


def test_an_mp4_cut_in_half_is_truncated(mp4: bytes) -> None:
    """Cut before its moov box (the muxer writes it last), an MP4 is truncated."""
    assert _refused(mp4[: len(mp4) // 2]).kind == "truncated"


def test_a_cut_file_returns_the_frames_before_the_cut(tmp_path: Path, webm: bytes) -> None:
    """With the index first (faststart MP4, WebM), a file cut in half returns the frames decoded
    before the cut: at least one, fewer than the whole clip."""
    faststart = write_clip(tmp_path / "clip.mp4", options={"movflags": "faststart"})
    for data in (faststart, webm):
        decoded = decode_video(data[: len(data) // 2], VideoLimits(max_frames=32))
        assert 1 <= len(decoded.frames) < 30


def test_random_bytes_after_the_ftyp_box_fail_typed(mp4: bytes) -> None:
    """Garbage after a valid ftyp box is decode_failed, not a crash."""
    ftyp_size = int.from_bytes(mp4[:4], "big")
    garbage = random.Random(7).randbytes(4000)
    assert _refused(mp4[:ftyp_size] + garbage).kind == "decode_failed"


def test_an_empty_mdat_has_no_frame(tmp_path: Path) -> None:
    """An index that points into a zero-byte mdat yields no frame: truncated."""
    data = write_clip(tmp_path / "clip.mp4", options={"movflags": "faststart"})
    mdat = data.find(b"mdat") - 4
    assert _refused(data[:mdat] + b"\x00\x00\x00\x08mdat").kind == "truncated"


@pytest.mark.parametrize(
    ("container", "codec", "name"), [("matroska", "ffv1", "ffv1"), ("mp4", "mjpeg", "mjpeg")]
)
def test_a_codec_outside_the_allow_list_is_refused(container: str, codec: str, name: str) -> None:
    """FFV1 in Matroska and MJPEG in MP4 are refused as unsupported_codec, naming the codec."""
    data = write_clip(io.BytesIO(), container=container, codec=codec, frames=3)
    error = _refused(data)
    assert error.kind == "unsupported_codec"
    assert name in str(error)


def test_a_frame_size_above_the_limit_is_a_bomb(mp4: bytes) -> None:
    """A coded size above max_frame_pixels is refused as decompression_bomb."""
    assert _refused(mp4, VideoLimits(max_frame_pixels=96 * 64 - 1)).kind == "decompression_bomb"


def test_a_decode_over_its_budget_times_out(mp4: bytes) -> None:
    """The clock is checked between frames: a budget shorter than one frame is decode_timeout."""
    assert _refused(mp4, VideoLimits(max_decode_s=1e-9)).kind == "decode_timeout"


def test_a_webm_header_over_mp4_bytes_fails_typed(mp4: bytes, webm: bytes) -> None:
    """Bytes that sniff as WebM (an EBML header) but carry an MP4 go to the Matroska demuxer,
    which finds no segment in them: a typed error with a stable kind."""
    ebml_header_end = webm.find(b"\x18\x53\x80\x67")  # the Segment element follows the header
    hostile = webm[:ebml_header_end] + mp4
    assert sniff_video(hostile) == "webm"
    assert _refused(hostile).kind == "truncated"


def test_a_file_without_video_is_not_an_image() -> None:
    """An MP4 holding only audio is not_an_image, saying it has no video stream."""
    out = io.BytesIO()
    with av.open(out, "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = 8000, 0
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    error = _refused(out.getvalue())
    assert error.kind == "not_an_image"
    assert "no video stream" in str(error)


def test_cuts_anywhere_give_frames_or_a_typed_error(tmp_path: Path, webm: bytes) -> None:
    """However a file is cut, the answer is frames or a typed error: nothing else escapes."""
    faststart = write_clip(tmp_path / "clip.mp4", options={"movflags": "faststart"})
    for data in (faststart, webm):
        for fraction in (0.1, 0.3, 0.6, 0.9):
            cut = data[: int(len(data) * fraction)]
            error, took_s = _timed(lambda cut=cut: decode_video(cut, VideoLimits()))
            assert took_s < 1.0
            assert error is None or isinstance(error, ImageError), repr(error)


def test_a_window_between_distant_keyframes_is_found() -> None:
    """With x264's default keyframe distance (250 frames) a 20 s clip is one keyframe and then
    only predicted frames: a red stretch from 12.0 s to 12.6 s is still sampled (seeking lands on
    the keyframe at 0 s, and decoding goes on to each target instead of stopping short)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"preset": "ultrafast", "g": "250"})
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(200):
            colour = RED if 120 <= i < 126 else BLUE
            frame = av.VideoFrame.from_ndarray(np.full((64, 96, 3), colour, np.uint8),
                                               format="rgb24")  # fmt: skip
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    # 8 samples, 2.5 s (25 frames) apart: far enough for the sampler to seek between them.
    decoded = decode_video(buffer.getvalue(), VideoLimits(max_frames=8))
    assert len(decoded.frames) == 8
    red = [frame for frame in decoded.frames if _is(RED, frame.image)]
    assert red and all(12.0 - 1 / FPS <= frame.offset_s < 12.6 + 1 / FPS for frame in red)
